"""AWS resources of the aws target: the database's security group, DB subnet group, parameter group
and the RDS instance, each with safe defaults read back on refresh (drift on what matters for
security: public accessibility, encryption, deletion protection, security-group rules), and the IAM
role and policy around them.

Every one is tagged ManagedBy/Project/Environment: the tags are the marker that tells ours from
someone else's. One module per service: network (EC2), rds_groups and rds_instance (RDS), iam.
"""

from __future__ import annotations

from .common import PORT, _Aws
from .iam import IamPolicyProvider, IamRoleProvider, workers_policy
from .network import SecurityGroupProvider
from .rds_groups import ParameterGroupProvider, SubnetGroupProvider, parameters
from .rds_instance import MONITORING_POLICY, DbInstanceProvider

__all__ = [
    "MONITORING_POLICY",
    "PORT",
    "DbInstanceProvider",
    "IamPolicyProvider",
    "IamRoleProvider",
    "ParameterGroupProvider",
    "SecurityGroupProvider",
    "SubnetGroupProvider",
    "_Aws",
    "parameters",
    "workers_policy",
]
