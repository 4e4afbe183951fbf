"""The OCI runtime commands (runc's surface, as Docker and containerd call it)."""

from __future__ import annotations

from cli.oci_exec import EXEC_COMMANDS
from cli.oci_lifecycle import LIFECYCLE_COMMANDS
from cli.oci_query import QUERY_COMMANDS
from cli.oci_setup import SETUP_COMMANDS
from cli.oci_update import UPDATE_COMMANDS

OCI_COMMANDS = LIFECYCLE_COMMANDS + QUERY_COMMANDS + EXEC_COMMANDS + SETUP_COMMANDS + UPDATE_COMMANDS
