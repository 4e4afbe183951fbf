"""Gofer writes against a real process: they work, stay under the root, and a read-only gofer refuses them."""

from __future__ import annotations

import errno
import os
import stat

import pytest

import gofer
from gofer import writes
from gofer.client import ROOT_NODE


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_text("inside\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim").write_text("host\n")
    (root / "escape").symlink_to(tmp_path / "outside")
    (root / "victim-link").symlink_to(tmp_path / "outside" / "victim")
    return root


def _client(tree, writable):
    proc, c = gofer.start(str(tree), writable=writable)
    return proc, c


@pytest.fixture
def client(tree):
    proc, c = _client(tree, True)
    yield c
    c.shutdown()
    assert proc.wait(timeout=10) == 0


@pytest.fixture
def ro_client(tree):
    proc, c = _client(tree, False)
    yield c
    c.shutdown()
    assert proc.wait(timeout=10) == 0


def test_create_write_rename_unlink(client, tree):
    d, _ = client.walk(ROOT_NODE, b"dir")
    node, st = client.create(d, b"new", 0o640, os.getuid(), os.getgid())
    assert stat.S_ISREG(st.mode) and st.mode & 0o777 == 0o640
    fd = client.open(node, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"hello")
    os.close(fd)
    assert (tree / "dir" / "new").read_bytes() == b"hello"
    with pytest.raises(FileExistsError):
        client.create(d, b"new", 0o600, 0, 0)
    client.rename(d, b"new", ROOT_NODE, b"moved")
    assert (tree / "moved").read_bytes() == b"hello"
    # The node follows its file to the new name.
    assert client.stat(node).size == 5
    fd = client.open(node, os.O_RDONLY)
    assert os.read(fd, 10) == b"hello"
    os.close(fd)
    client.unlink(ROOT_NODE, b"moved")
    assert not (tree / "moved").exists()


def test_mkdir_symlink_link_setattr_statfs(client, tree):
    sub, st = client.mkdir(ROOT_NODE, b"sub", 0o750, 0, 0)
    assert stat.S_ISDIR(st.mode) and st.mode & 0o777 == 0o750
    client.symlink(sub, b"ln", b"../dir/file", 0, 0)
    assert os.readlink(tree / "sub" / "ln") == "../dir/file"
    f, _ = client.walk(client.walk(ROOT_NODE, b"dir")[0], b"file")
    client.link(sub, b"hard", f)
    assert os.stat(tree / "sub" / "hard").st_ino == os.stat(tree / "dir" / "file").st_ino
    st = client.setattr(f, mode=0o4755, size=3, atime_ns=10**18, mtime_ns=2 * 10**18)
    assert st.mode & 0o7777 == 0o755  # no setuid on the host
    assert st.size == 3 and st.mtime_ns == 2 * 10**18
    assert (tree / "dir" / "file").read_bytes() == b"ins"
    assert client.statfs(ROOT_NODE).bsize > 0
    client.fsync(f)
    with pytest.raises(OSError) as e:
        client.unlink(ROOT_NODE, b"sub", directory=True)
    assert e.value.errno == errno.ENOTEMPTY


def test_xattrs_round_trip(client, tree):
    f, _ = client.walk(client.walk(ROOT_NODE, b"dir")[0], b"file")
    try:
        client.xattr(f, writes.XATTR_SET, b"user.k", b"v")
    except OSError as e:
        pytest.skip(f"host fs has no user xattrs: {e}")
    assert client.xattr(f, writes.XATTR_GET, b"user.k").value == b"v"
    assert b"user.k" in client.xattr(f, writes.XATTR_LIST).names
    client.xattr(f, writes.XATTR_REMOVE, b"user.k")
    with pytest.raises(OSError):
        client.xattr(f, writes.XATTR_GET, b"user.k")


@pytest.mark.parametrize("name", [b"..", b".", b"a/b", b"../x", b"", b"a\0b"])
def test_every_write_refuses_bad_names(client, name):
    d, _ = client.walk(ROOT_NODE, b"dir")
    f, _ = client.walk(d, b"file")
    for call in (
        lambda: client.create(ROOT_NODE, name, 0o644, 0, 0),
        lambda: client.mkdir(ROOT_NODE, name, 0o755, 0, 0),
        lambda: client.symlink(ROOT_NODE, name, b"x", 0, 0),
        lambda: client.link(ROOT_NODE, name, f),
        lambda: client.unlink(d, name),
        lambda: client.unlink(d, name, directory=True),
        lambda: client.rename(d, b"file", ROOT_NODE, name),
        lambda: client.rename(d, name, ROOT_NODE, b"x"),
    ):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EINVAL


def test_writes_never_go_through_symlinks(client, tree, tmp_path):
    link, _ = client.walk(ROOT_NODE, b"escape")
    vlink, _ = client.walk(ROOT_NODE, b"victim-link")
    for call in (
        lambda: client.create(link, b"x", 0o644, 0, 0),
        lambda: client.mkdir(link, b"x", 0o755, 0, 0),
        lambda: client.symlink(link, b"x", b"y", 0, 0),
        lambda: client.unlink(link, b"victim"),
        lambda: client.rename(link, b"victim", ROOT_NODE, b"stolen"),
        lambda: client.rename(ROOT_NODE, b"dir", link, b"planted"),
        lambda: client.link(link, b"x", vlink),
    ):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.ENOTDIR
    for kw in ({"mode": 0o777}, {"size": 0}):
        with pytest.raises(OSError):
            client.setattr(vlink, **kw)
    with pytest.raises(OSError):
        client.open(vlink, os.O_WRONLY | os.O_TRUNC)
    client.setattr(vlink, atime_ns=1, mtime_ns=1)  # the link's own times, as lutimes
    assert (tmp_path / "outside" / "victim").read_text() == "host\n"
    assert os.stat(tmp_path / "outside" / "victim").st_mtime_ns != 1
    assert sorted(os.listdir(tmp_path / "outside")) == ["victim"]


def test_a_file_swapped_for_a_symlink_on_the_host_is_not_followed(client, tree, tmp_path):
    d, _ = client.walk(ROOT_NODE, b"dir")
    f, _ = client.walk(d, b"file")
    os.unlink(tree / "dir" / "file")
    os.symlink(tmp_path / "outside" / "victim", tree / "dir" / "file")
    for call in (
        lambda: client.setattr(f, mode=0o777),
        lambda: client.setattr(f, size=0),
        lambda: client.open(f, os.O_WRONLY),
    ):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno in (errno.ELOOP, errno.ESTALE)
    assert (tmp_path / "outside" / "victim").read_text() == "host\n"
    assert stat.S_IMODE(os.stat(tmp_path / "outside" / "victim").st_mode) != 0o777


def test_dotdot_after_rename_stays_inside(client, tree):
    d, _ = client.walk(ROOT_NODE, b"dir")
    up, _ = client.walk(d, b"..")
    up2, _ = client.walk(up, b"..")
    client.mkdir(up2, b"made", 0o755, 0, 0)
    assert (tree / "made").is_dir()


def test_read_only_gofer_refuses_every_write(ro_client, tree):
    c = ro_client
    d, _ = c.walk(ROOT_NODE, b"dir")
    f, _ = c.walk(d, b"file")
    for call in (
        lambda: c.create(d, b"x", 0o644, 0, 0),
        lambda: c.mkdir(d, b"x", 0o755, 0, 0),
        lambda: c.symlink(d, b"x", b"y", 0, 0),
        lambda: c.link(d, b"x", f),
        lambda: c.unlink(d, b"file"),
        lambda: c.rename(d, b"file", d, b"y"),
        lambda: c.setattr(f, mode=0o600),
        lambda: c.open(f, os.O_RDWR),
        lambda: c.open(f, os.O_RDONLY | os.O_TRUNC),
    ):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EROFS
    assert (tree / "dir" / "file").read_text() == "inside\n"


def test_nodes_of_replaced_or_removed_files_go_stale(client, tree):
    d, _ = client.walk(ROOT_NODE, b"dir")
    victim, _ = client.walk(d, b"file")
    client.create(d, b"other", 0o644, 0, 0)
    client.rename(d, b"other", d, b"file")
    with pytest.raises(OSError) as e:
        client.setattr(victim, uid=os.getuid(), gid=os.getgid())
    assert e.value.errno == errno.ESTALE
    fresh, _ = client.walk(d, b"file")
    client.unlink(d, b"file")
    for call in (
        lambda: client.setattr(fresh, atime_ns=1, mtime_ns=1),
        lambda: client.stat(fresh),
        lambda: client.statfs(fresh),
        lambda: client.open(fresh, os.O_RDONLY),
        lambda: client.xattr(fresh, writes.XATTR_LIST),
        lambda: client.fsync(fresh),
    ):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno in (errno.ESTALE, errno.EPERM)
    assert client.stat(ROOT_NODE).mode  # the gofer is still serving


def test_a_directory_swapped_for_a_symlink_keeps_writes_in_the_real_one(client, tree, tmp_path):
    d, _ = client.walk(ROOT_NODE, b"dir")
    os.rename(tree / "dir", tree / "dir2")
    os.symlink(tmp_path / "outside", tree / "dir")
    client.create(d, b"planted", 0o644, 0, 0)
    client.mkdir(d, b"sub", 0o755, 0, 0)
    client.rename(d, b"file", d, b"renamed")
    assert (tree / "dir2" / "planted").exists() and (tree / "dir2" / "sub").is_dir()
    assert (tree / "dir2" / "renamed").exists()
    assert sorted(os.listdir(tmp_path / "outside")) == ["victim"]
    with pytest.raises(OSError) as e:
        client.create(client.walk(ROOT_NODE, b"dir")[0], b"x", 0o644, 0, 0)
    assert e.value.errno == errno.ENOTDIR
