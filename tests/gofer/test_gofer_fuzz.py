"""Hostile requests of every kind against a writable gofer: errno replies only, the process survives, and
nothing outside its root changes."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gofer
from gofer import gofer_pb2 as pb

NAMES = st.one_of(
    st.sampled_from([b"", b".", b"..", b"a/b", b"../x", b"x\0y", b"dir", b"file", b"link", b"n" * 300]),
    st.binary(max_size=20),
)
NODES = st.one_of(st.integers(0, 8), st.integers(0, (1 << 64) - 1))
U32 = st.integers(0, (1 << 32) - 1)
S64 = st.integers(-(1 << 63), (1 << 63) - 1)
REQUESTS = st.one_of(
    st.builds(lambda n, m, f: pb.Request(walk=pb.WalkRequest(node=n, name=m)), NODES, NAMES, U32),
    st.builds(lambda n, f: pb.Request(open=pb.OpenRequest(node=n, flags=f)), NODES, U32),
    st.builds(
        lambda n, m, mode: pb.Request(create=pb.CreateRequest(node=n, name=m, mode=mode)), NODES, NAMES, U32
    ),
    st.builds(
        lambda n, m, mode: pb.Request(mkdir=pb.MkdirRequest(node=n, name=m, mode=mode)), NODES, NAMES, U32
    ),
    st.builds(
        lambda n, m, t: pb.Request(symlink=pb.SymlinkRequest(node=n, name=m, target=t)), NODES, NAMES, NAMES
    ),
    st.builds(lambda n, m, t: pb.Request(link=pb.LinkRequest(node=n, name=m, target=t)), NODES, NAMES, NODES),
    st.builds(
        lambda n, m, d: pb.Request(unlink=pb.UnlinkRequest(node=n, name=m, directory=d)),
        NODES,
        NAMES,
        st.booleans(),
    ),  # fmt: skip
    st.builds(
        lambda n, m, n2, m2, f: pb.Request(
            rename=pb.RenameRequest(node=n, name=m, new_node=n2, new_name=m2, flags=f)
        ),
        NODES,
        NAMES,
        NODES,
        NAMES,
        U32,
    ),  # fmt: skip
    st.builds(
        lambda n, mask, mode, uid, size, t: pb.Request(
            setattr=pb.SetAttrRequest(
                node=n, mask=mask, mode=mode, uid=uid, gid=uid, size=size, atime_ns=t, mtime_ns=t
            )  # fmt: skip
        ),
        NODES,
        U32,
        U32,
        st.integers(-1, 1 << 31),
        S64,
        S64,
    ),  # fmt: skip
    st.builds(lambda n: pb.Request(fsync=pb.FSyncRequest(node=n)), NODES),
    st.builds(lambda n: pb.Request(statfs=pb.StatFSRequest(node=n)), NODES),
    st.builds(
        lambda n, op, m, v, f: pb.Request(xattr=pb.XattrRequest(node=n, op=op, name=m, value=v, flags=f)),
        NODES,
        st.integers(0, 5),
        NAMES,
        st.binary(max_size=64),
        U32,
    ),  # fmt: skip
    st.builds(
        lambda n, o: pb.Request(readdir=pb.ReadDirRequest(node=n, offset=o)), NODES, st.integers(0, 1 << 40)
    ),
    st.builds(lambda ns: pb.Request(close=pb.CloseRequest(nodes=ns)), st.lists(NODES, max_size=4)),
)


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep").write_text("host\n")
    (root / "link").symlink_to(tmp_path / "outside")
    proc, client = gofer.start(str(root), writable=True)
    yield client, tmp_path
    client.shutdown()
    assert proc.wait(timeout=10) == 0


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(reqs=st.lists(REQUESTS, min_size=1, max_size=8))
def test_hostile_requests_get_errnos_and_stay_inside(served, reqs):
    client, tmp_path = served
    for req in reqs:
        try:
            _, fds = client._call(req)
        except OSError:
            continue
        for fd in fds:
            os.close(fd)
    assert client.stat(0).mode  # still serving
    outside = tmp_path / "outside"
    assert sorted(os.listdir(outside)) == ["keep"] and (outside / "keep").read_text() == "host\n"
    assert os.stat(outside / "keep").st_mode & 0o777 == 0o644
