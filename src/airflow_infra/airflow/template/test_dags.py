"""Every DAG in dags/ loads without import errors."""

from pathlib import Path


def test_dags_load():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parent.parent / "dags"))
    assert not bag.import_errors, bag.import_errors
    assert "{{name}}_example_elt" in bag.dag_ids
