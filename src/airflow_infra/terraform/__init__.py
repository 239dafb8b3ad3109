"""Reading a Terraform state file (format version 4, Terraform 0.12 to 1.x) made by the seed's
Airflow-Infrastructure module, and the airflow-infra.toml that adopts what it describes.

Only what is needed to adopt is read; the seed's master password (sensitive, in the state file)
is never read at all. The state is read strictly, as it may come from anywhere and what it says goes
into airflow-infra.toml and AWS calls: at most 64 MiB of UTF-8 JSON with no NaN, no key given twice
and no deep nesting, and each field used checked for its type and shape. Anything else is refused
with one line naming the file, the field (a JSON path) and what is allowed.
"""

from __future__ import annotations

from .seed import SeedInfrastructure, read_seed_state, render_adoption_config
from .strictjson import printable

__all__ = ["SeedInfrastructure", "printable", "read_seed_state", "render_adoption_config"]
