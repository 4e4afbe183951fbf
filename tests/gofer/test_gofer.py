"""The gofer process: protocol operations and confinement to its root, against a real process."""

from __future__ import annotations

import errno
import os
import stat

import pytest

import gofer
from gofer import gofer_pb2 as pb
from gofer import wire
from gofer.client import ROOT_NODE


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_text("inside\n")
    (root / "big").mkdir()
    for i in range(600):
        (root / "big" / f"entry-{i:04d}").touch()
    (tmp_path / "outside").write_text("host secret\n")
    (root / "abs").symlink_to(tmp_path / "outside")
    (root / "up").symlink_to("../outside")
    (root / "hostdir").symlink_to(str(tmp_path))
    os.mkfifo(root / "fifo")
    return root


@pytest.fixture
def client(tree):
    proc, c = gofer.start(str(tree))
    yield c
    c.shutdown()
    assert proc.wait(timeout=10) == 0


def walk_path(c, names):
    node = ROOT_NODE
    for name in names:
        node, st = c.walk(node, name)
    return node, st


def test_walk_stat_open_read(client, tree):
    node, st = walk_path(client, [b"dir", b"file"])
    assert stat.S_ISREG(st.mode) and st.size == 7
    assert st.ino == os.stat(tree / "dir" / "file").st_ino
    fd = client.open(node, os.O_RDONLY)
    try:
        assert os.pread(fd, 100, 0) == b"inside\n"
        assert os.fstat(fd).st_ino == st.ino
    finally:
        os.close(fd)
    assert client.stat(node).size == 7


def test_readdir_pages_through_large_directories(client):
    node, _ = client.walk(ROOT_NODE, b"big")
    names = sorted(e.name for e in client.readdir(node))
    assert names == [f"entry-{i:04d}".encode() for i in range(600)]


def test_readlink_returns_the_text_and_never_follows(client):
    node, st = client.walk(ROOT_NODE, b"abs")
    assert stat.S_ISLNK(st.mode)
    assert client.readlink(node).endswith(b"/outside")
    with pytest.raises(OSError) as e:
        client.open(node, os.O_RDONLY)
    assert e.value.errno == errno.ELOOP


@pytest.mark.parametrize("link", [b"abs", b"up", b"hostdir"])
def test_cannot_walk_through_a_symlink_out_of_the_root(client, link):
    node, _ = client.walk(ROOT_NODE, link)
    with pytest.raises(OSError) as e:
        client.walk(node, b"outside")
    assert e.value.errno == errno.ENOTDIR


def test_dotdot_at_the_root_stays_at_the_root(client, tree):
    node = ROOT_NODE
    for _ in range(5):
        node, st = client.walk(node, b"..")
        assert st.ino == os.stat(tree).st_ino
    names = {e.name for e in client.readdir(node)}
    assert b"dir" in names and b"outside" not in names
    with pytest.raises(OSError) as e:
        client.walk(node, b"outside")
    assert e.value.errno == errno.ENOENT


@pytest.mark.parametrize("name", [b"../outside", b"dir/file", b"/etc", b"", b"a\0b", b"x" * 256])
def test_names_with_slashes_or_nul_are_refused(client, name):
    with pytest.raises(OSError) as e:
        client.walk(ROOT_NODE, name)
    assert e.value.errno == errno.EINVAL


def test_read_only_and_no_special_files(client):
    node, _ = walk_path(client, [b"dir", b"file"])
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_RDONLY | os.O_CREAT):
        with pytest.raises(OSError) as e:
            client.open(node, flags)
        assert e.value.errno == errno.EROFS
    fifo, _ = client.walk(ROOT_NODE, b"fifo")
    with pytest.raises(OSError) as e:
        client.open(fifo, os.O_RDONLY)
    assert e.value.errno == errno.EPERM


def test_unknown_nodes_and_garbage_get_errors_not_crashes(client):
    with pytest.raises(OSError) as e:
        client.stat(12345)
    assert e.value.errno == errno.EBADF
    # A packet that is not a protobuf Request.
    client._sock.send(b"\xff\xff\xff\xff")
    resp, _ = wire.recv(client._sock, pb.Response)
    assert resp.errno == errno.EINVAL
    # An empty request (no operation set).
    wire.send(client._sock, pb.Request())
    resp, _ = wire.recv(client._sock, pb.Response)
    assert resp.errno == errno.ENOSYS
    assert client.stat(ROOT_NODE).ino > 0


def test_close_forgets_nodes(client):
    node, _ = client.walk(ROOT_NODE, b"dir")
    client.close([node])
    with pytest.raises(OSError) as e:
        client.stat(node)
    assert e.value.errno == errno.EBADF


def test_gofer_holds_no_inherited_fds(tree):
    leak = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(leak, True)
    try:
        proc, c = gofer.start(str(tree))
        fds = os.listdir(f"/proc/{proc.pid}/fd")
        c.shutdown()
        proc.wait(timeout=10)
    finally:
        os.close(leak)
    # stdin/stdout/stderr, the socket, the root fd (and the listing's own fd).
    assert len(fds) <= 6


def test_only_directories_hold_gofer_fds(tree):
    proc, c = gofer.start(str(tree))
    try:
        big, _ = c.walk(ROOT_NODE, b"big")
        before = len(os.listdir(f"/proc/{proc.pid}/fd"))
        nodes = [c.walk(big, e.name)[0] for e in c.readdir(big)]
        assert len(nodes) == 600
        assert len(os.listdir(f"/proc/{proc.pid}/fd")) == before
        assert c.stat(nodes[0]).size == 0
    finally:
        c.shutdown()
        proc.wait(timeout=10)


def test_root_must_be_a_directory(tmp_path):
    with pytest.raises(NotADirectoryError):
        gofer.start(str(tmp_path / "missing"))
