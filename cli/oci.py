"""The OCI runtime commands (runc's surface, as Docker and containerd call it), by module.

Names, not imports: the main group loads a command's module only when that
command runs (cli/lazy_group.py). Each module's *_COMMANDS list must match.
"""

from __future__ import annotations

_MODULES = {
    "cli.oci_lifecycle": ("create", "start", "run", "kill", "delete", "wait", "pause", "resume"),
    "cli.oci_query": ("state", "list", "ps", "events"),
    "cli.oci_exec": ("exec",),
    "cli.oci_setup": ("spec", "features", "install", "uninstall"),
    "cli.oci_update": ("update",),
}

# Command name -> "module:attribute" of its click command (each named NAME_command).
OCI_COMMANDS = {name: f"{module}:{name}_command" for module, names in _MODULES.items() for name in names}
