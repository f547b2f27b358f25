"""Docker Engine API operations: (method, route template) -> operation name.

Built from the Engine API specs (v1.41 to v1.56) into operations.json; see build.py.
"""

from docker_socket_operator.catalogue.types import MatchedOperation, Operation, TargetKind

__all__ = ["MatchedOperation", "Operation", "TargetKind"]
