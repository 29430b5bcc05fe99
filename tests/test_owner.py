"""Exact ownership: `bench cleanup --run-id cx` takes run cx's folders, never those of a live run
cx-2 whose name it prefixes, and plain `bench cleanup` never a bench-* folder nobody marked."""

from __future__ import annotations

from bench import cleanup, owner

from conftest import bench_cli


def test_cleanup_matches_run_ids_exactly_by_the_marker(tmp_path):
    mine, live, stranger = tmp_path / "bench-cx-host-a1", tmp_path / "bench-cx-2-host-b2", tmp_path / "bench-x-y"
    for folder in (mine, live, stranger):
        folder.mkdir()
    owner.mark(mine, "cx")
    owner.mark(live, "cx-2")
    found = cleanup._scratch_leftovers("cx", tmp_path)
    assert [(f.name, f.run_id) for f in found] == [(str(mine), "cx")]
    every = cleanup._scratch_leftovers(None, tmp_path)
    assert sorted(f.run_id for f in every) == ["cx", "cx-2"]   # the unmarked folder is nobody's we know
    r = bench_cli("cleanup", "--run-id", "cx", "--scratch", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert not mine.exists() and live.exists() and stranger.exists()


def test_a_second_dockerds_folder_fits_unix_sockets_for_every_valid_run_id():
    """The variants suite with a default run id once stopped at 'too long for a unix socket path':
    the folder is a short hash now, whatever the run id (128 characters at most) and environment."""
    from bench import config
    from bench.environments import dockerd

    longest_env = max(config.load().environments, key=len)
    for run_id in ("20261202-065541-variants-f10a", "r" * 128):
        d = dockerd.Dockerd(run_id, longest_env, storage_driver="vfs")
        assert len(str(d.folder / "exec" / "containerd" / "containerd.sock.ttrpc")) <= dockerd.SOCKET_PATH_MAX
        assert d.folder != dockerd.Dockerd(run_id + "x", longest_env).folder
