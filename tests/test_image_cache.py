"""The image's cached files are made once, however many runs ask for them at the same time."""

from __future__ import annotations

import dataclasses
import threading
import time

from bench import image, settings


def test_two_runs_asking_for_a_missing_root_file_system_build_it_once(tmp_path, monkeypatch, capsys):
    """The second waits on the first's lock (a flock, as between two processes: two open files
    of the lock conflict in one process too) and takes the file it made, rather than spending
    the minutes of a second debootstrap beside it."""
    settings.use(dataclasses.replace(settings.current(), cache_dir=tmp_path))
    recipe = image.recipe()
    builds = []

    def slow_build(r):
        builds.append(threading.get_ident())
        time.sleep(0.5)   # the first holds the lock while the second asks
        r.rootfs.write_bytes(b"tar")
        return r.rootfs

    monkeypatch.setattr(image, "_build_rootfs", slow_build)
    made = []
    runs = [threading.Thread(target=lambda: made.append(image.build_rootfs(recipe))) for _ in range(2)]
    for t in runs:
        t.start()
        time.sleep(0.1)
    for t in runs:
        t.join(timeout=10)
    assert len(builds) == 1 and made == [recipe.rootfs, recipe.rootfs]
    assert f"waiting for another bench making the rootfs of {recipe.digest}" in capsys.readouterr().err
    image.build_rootfs(recipe, force=True)   # --force builds again, lock or not
    assert len(builds) == 2
