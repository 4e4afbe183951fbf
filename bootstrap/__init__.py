"""OCI bundle -> sandbox: what runc does for runc, done for the Sentry.

The process tree an OCI client sees:

    shim ─┬─ kvmsandbox create   validates the bundle (spec.py), records state (state.py),
          │                      spawns the sandbox process and waits for it to be ready (launcher.py)
          ├─ sandbox process     python -m bootstrap.sandbox_process: host namespaces (namespaces.py),
          │    └─ gofer          the Sentry (backend.py -> sentry_backend.py), the control socket
          │                      (control.py), then confined (confine.py: a root of its own code,
          │                      no capabilities, a seccomp allowlist; docs/confinement.md); its
          │                      exit status is the container's; the pid in --pid-file
          └─ exec stand-in       python -m bootstrap.exec_proxy, for `exec --detach` (exec_proxy.py)

Every other command (start, kill, ps, exec, pause, wait, events, delete) is
a short-lived CLI process that takes the container's lock, talks to the
sandbox process over `<root>/<id>/control.sock` and updates the recorded
state (container.py, execute.py). Hooks run on the host (hooks.py).
"""
