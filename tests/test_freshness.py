"""Git's word for which model folders are unchanged (regops.freshness): the summaries' key at 100,000 versions.

Real git repositories in tmp_path. Each test of a fall-back changes a file in a way that a key trusted wrongly
would miss, and checks ``status`` against what the files themselves say (no cache at all).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regops import api, cli, freshness, queries, report
from regops.freshness import blob_id, model_keys, vouched
from regops.registry import Registry
from regops.summaries import RACY_NS, SummaryIndex, now_ns

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import generate

from tests.conftest import AgedPool

IDENTITY = ("-c", "user.name=Ada", "-c", "user.email=ada@example.com")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("generated"), 3, 6, seed=3)


def committed(template: Path, root: Path, below: str = "") -> Path:
    """The generated registry copied to ``root/below`` and committed in a new repository at ``root``, aged."""
    made = unaged(template, root, below)
    aged(made)
    return made


def unaged(template: Path, root: Path, below: str = "") -> Path:
    """:func:`committed` without the wait: its files are still in the racy window."""
    shutil.copytree(template, root / below / "registry")
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-q", "-m", "registry")):
        git(root, *args)
    return root / below


@pytest.fixture(scope="module")
def repos(template: Path, tmp_path_factory: pytest.TempPathFactory) -> AgedPool:
    """Committed registries made in batches and aged together (one wait per batch, per worker)."""
    return AgedPool(tmp_path_factory.mktemp("repos"), lambda root: unaged(template, root), lambda made: aged(*made))


@pytest.fixture
def repo(repos: AgedPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry committed in a git repository of its own, its files aged past the racy window: keys are git's."""
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "cache"))
    return repos.take()


def aged(*roots: Path) -> None:
    """Wait until every file and folder of each root is older than the racy window (ctimes cannot be set back),
    then refresh each one's git index, as a checkout leaves it."""
    newest = max(p.lstat().st_ctime_ns for root in roots for p in (root / "registry").rglob("*"))
    time.sleep(max(0, newest + RACY_NS - now_ns()) / 1e9 + 0.01)
    for root in roots:
        git(root, "update-index", "-q", "--refresh")


def models(root: Path) -> Path:
    return root / "registry" / "models"


def first(root: Path) -> Path:
    return sorted(models(root).iterdir())[0]


def status(root: Path) -> list[object]:
    return list(Registry.load(root / "registry").status())


def from_files(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    with monkeypatch.context() as m:
        m.setenv("REGOPS_NO_CACHE", "1")
        return status(root)


def keys(root: Path) -> dict[str, object]:
    return dict(model_keys(models(root), sorted(p.name for p in models(root).iterdir())))


def by_git(root: Path) -> list[str]:
    """The models whose status entry answers to their git key now."""
    index = SummaryIndex.from_environment()
    return [name for name, key in keys(root).items() if index.lookup(models(root) / name, "status", key)]


def same_size_edit(path: Path) -> None:
    """Change one byte of a score, keep the size, put the mtime back: only ctime and content move."""
    before = path.stat()
    text = path.read_text()
    at = text.index("0.", text.index("scores:")) + 2
    digit = "1" if text[at] != "1" else "2"
    path.write_text(text[:at] + digit + text[at + 1 :])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def promote(path: Path) -> None:
    text = (
        path.read_text()
        .replace("\nstage: candidate\n", "\nstage: archived\n")
        .replace("transitions: []", "transitions:")
    )
    path.write_text(text.rstrip("\n") + "\n  - {from: candidate, to: archived, at: 2026-11-30T10:00:00Z, by: alice}\n")


def candidate(root: Path) -> Path:
    return next(p for p in sorted(first(root).glob("*.yaml")) if "\nstage: candidate\n" in p.read_text())


# --- the key: git's tree, when git vouches -------------------------------------------------------------------


def test_a_clean_committed_registry_is_keyed_by_its_trees_and_status_reads_those_entries(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = keys(repo)
    trees = dict(line.split("\t")[::-1] for line in git(models(repo), "ls-tree", "HEAD", "--", ".").splitlines())
    assert {name: key[0] for name, key in found.items()} == {  # type: ignore[index]
        name: entry.split()[2] for name, entry in trees.items()
    }
    expected = from_files(repo, monkeypatch)
    assert status(repo) == expected  # cold: read, vouched, stored under the tree
    assert by_git(repo) == sorted(found)
    assert status(repo) == expected  # warm, from the git-keyed entries


def test_the_blob_id_is_git_s(repo: Path) -> None:
    path = candidate(repo)
    assert blob_id(path.read_bytes()) == git(repo, "hash-object", str(path)).strip()


def test_a_same_size_edit_with_its_mtime_put_back_is_read_again(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status(repo)
    same_size_edit(candidate(repo))
    assert first(repo).name not in [n for n, k in keys(repo).items() if k is not None]
    assert status(repo) == from_files(repo, monkeypatch)


def test_a_repository_that_trusts_no_ctime_still_sees_a_same_size_edit(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "config", "core.trustctime", "false")
    git(repo, "config", "core.checkStat", "minimal")
    status(repo)
    same_size_edit(candidate(repo))
    assert keys(repo)[first(repo).name] is None
    assert status(repo) == from_files(repo, monkeypatch)


@pytest.mark.parametrize("how", ["unstaged", "staged", "committed"])
def test_an_edited_file_is_read_again_staged_or_not_or_committed(
    repo: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    before = status(repo)
    path = candidate(repo)
    promote(path)
    if how != "unstaged":
        git(repo, "add", str(path))
    if how == "committed":
        git(repo, "commit", "-q", "-m", "archive")
    after = status(repo)
    assert after != before
    assert after == from_files(repo, monkeypatch)


@pytest.mark.parametrize("how", ["untracked", "ignored"])
def test_a_new_file_git_does_not_track_is_read(repo: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    before = status(repo)
    source = candidate(repo)
    version = "9.9.9"
    text = source.read_text().replace(f"version: {source.stem}", f"version: {version}")
    if how == "ignored":
        (repo / ".git" / "info" / "exclude").write_text("*.yaml\n")
    (source.parent / f"{version}.yaml").write_text(text)
    assert keys(repo)[first(repo).name] is not None  # git says the tracked files are clean: the folder's stat says no
    after = status(repo)
    assert after[0].versions == before[0].versions + 1  # type: ignore[attr-defined]
    assert after == from_files(repo, monkeypatch)


def test_a_deleted_file_is_noticed(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = status(repo)
    candidate(repo).unlink()
    after = status(repo)
    assert after[0].versions == before[0].versions - 1  # type: ignore[attr-defined]
    assert after == from_files(repo, monkeypatch)


def test_a_file_git_is_told_not_to_look_at_gets_no_key(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status(repo)
    path = candidate(repo)
    git(repo, "update-index", "--assume-unchanged", str(path))
    promote(path)
    assert git(repo, "diff-index", "--name-only", "HEAD") == ""  # git itself does not see the edit
    assert keys(repo)[first(repo).name] is None
    assert status(repo) == from_files(repo, monkeypatch)


# --- the race between asking git and reading the files ------------------------------------------------------


def test_bytes_that_are_not_the_tree_s_are_never_stored_under_it(repo: Path) -> None:
    folder = first(repo)
    found = model_keys(models(repo), [folder.name])
    made = now_ns()
    index = SummaryIndex.from_environment()
    stats = {folder.name: index.stats(folder)}
    assert vouched(models(repo), found, stats, made) == found  # the files are the tree's: vouched

    promote(candidate(repo))  # changed after git was asked, before the read: stats taken after the edit
    time.sleep(RACY_NS / 1e9 + 0.01)
    later = {folder.name: index.stats(folder)}
    assert vouched(models(repo), found, later, now_ns()) == {}


def test_a_file_written_between_its_stat_and_its_hash_is_not_vouched_for(repo: Path) -> None:
    folder = first(repo)
    found = model_keys(models(repo), [folder.name])
    stats = {folder.name: SummaryIndex.from_environment().stats(folder)}
    path = candidate(repo)
    original = path.read_bytes()
    path.write_bytes(original)  # same bytes (the tree's), written again: what was read in between is unknown
    assert vouched(models(repo), found, stats, now_ns() + 2 * RACY_NS) == {}


def test_a_racy_folder_or_file_is_not_vouched_for(repo: Path) -> None:
    folder = first(repo)
    found = model_keys(models(repo), [folder.name])
    stats = {folder.name: SummaryIndex.from_environment().stats(folder)}
    newest = max(max(m, c) for _s, m, c, _i in stats[folder.name].values())
    assert vouched(models(repo), found, stats, newest) == {}
    assert vouched(models(repo), found, stats, newest + 2 * RACY_NS) == found


# --- cache safety: entries are checked, never trusted ------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "foreign", "empty"])
def test_a_damaged_entry_is_rebuilt_never_trusted(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    expected = status(repo)
    files = sorted((tmp_path / "cache").glob("summary-*.marshal"))
    assert len(files) == 3 * 3
    other = files[-1].read_bytes()
    for path in files[:-1]:
        raw = path.read_bytes()
        broken = {
            "truncated": raw[: len(raw) // 2],
            "corrupt": raw[:-5] + bytes([raw[-5] ^ 1]) + raw[-4:],
            "foreign": other,
            "empty": b"",
        }[damage]
        path.write_bytes(broken)
    promote(candidate(repo))  # the answer must come from the files, whatever the entries said
    assert status(repo) == from_files(repo, monkeypatch) != expected
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "archive")
    aged(repo)
    status(repo)
    assert by_git(repo) == sorted(keys(repo))  # rebuilt, and answering to the new trees


# --- fall back to the stat key: never wrong, at worst slow ---------------------------------------------------


def test_no_git_repository_means_no_git_key(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "plain"
    shutil.copytree(template, root / "registry")
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert set(keys(root).values()) == {None}
    status(root)
    same_size_edit(candidate(root))
    assert status(root) == from_files(root, monkeypatch)


def test_no_git_program_means_no_git_key(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = status(repo)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert set(keys(repo).values()) == {None}
    assert status(repo) == expected


def test_a_stale_index_reports_every_file_and_falls_back(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status(repo)
    for path in models(repo).rglob("*.yaml"):
        path.touch()
    assert set(keys(repo).values()) == {None}
    promote(candidate(repo))
    assert status(repo) == from_files(repo, monkeypatch)


def test_a_registry_below_the_repository_s_top_is_keyed(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "cache"))
    below = committed(template, tmp_path / "repo", "ml")
    assert None not in keys(below).values()
    status(below)
    assert by_git(below) == sorted(keys(below))


def test_a_linked_file_in_a_model_folder_gets_no_git_key(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = first(repo)
    (folder / "extra.yaml").symlink_to(candidate(repo).name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "link")
    aged(repo)
    status(repo)
    assert folder.name not in by_git(repo)
    assert status(repo) == from_files(repo, monkeypatch)


def test_git_variables_of_the_caller_do_not_point_git_elsewhere(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    found = keys(repo)
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert found == keys(repo)
    assert None not in found.values()


# --- a hostile repository config runs nothing -----------------------------------------------------------------


def test_a_planted_fsmonitor_or_hook_is_never_run(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "planted.sh"
    script.write_text(f"#!/bin/sh\necho ran >> {marker}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    git(repo, "config", "core.fsmonitor", str(script))
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook in ("post-index-change", "post-checkout", "pre-commit", "reference-transaction"):
        shutil.copy(script, hooks / hook)
    assert subprocess.run(["git", "status"], cwd=repo, capture_output=True, check=False).returncode == 0
    assert marker.exists()  # the plant works: plain git runs it
    marker.unlink()

    expected = from_files(repo, monkeypatch)
    assert status(repo) == expected
    assert status(repo) == expected
    assert not marker.exists()


def test_a_work_tree_configured_elsewhere_gives_no_git_key(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """core.worktree names another copy: git would compare that copy, not the files regops reads."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(repo / "registry", elsewhere / "registry", symlinks=True)
    git(repo, "config", "core.worktree", str(elsewhere))
    git(repo, "update-index", "-q", "--refresh")
    status(repo)
    assert set(keys(repo).values()) == {None}
    same_size_edit(candidate(repo))
    assert status(repo) == from_files(repo, monkeypatch)


def test_a_registry_inside_a_bare_repository_gives_no_git_key(template: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    shutil.copytree(template, bare / "registry")
    assert set(keys(bare).values()) == {None}


def test_a_warm_lookup_answers_from_the_git_key_alone(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry is found by git's key, without the stat key: an entry recorded under the folder's git key and
    stat data that match nothing is what ``summaries`` returns (here, on purpose, another model's rows)."""
    registry = Registry.load(repo / "registry")
    folder, other = sorted(models(repo).iterdir())[:2]
    index = SummaryIndex.from_environment()
    key = keys(repo)[folder.name]
    assert key is not None
    planted = index.store(
        folder, now_ns(), {"none.yaml": (1, 2, 3, 4)}, registry.model_entry(other.name), "accuracy", vouched=key
    )
    assert registry.summaries("status", [folder.name])[folder.name] == planted["status"]
    with monkeypatch.context() as m:
        m.setenv("REGOPS_NO_CACHE", "1")
        truth = Registry.load(repo / "registry").summaries("status", [folder.name])[folder.name]
    assert truth != planted["status"]  # the folder's own rows differ: the answer came from the planted entry


def test_a_file_name_that_looks_like_a_tree_record_names_no_tree(repo: Path) -> None:
    """ls-tree's records are split, never searched: a committed name holding another folder's record is a file."""
    names = sorted(p.name for p in models(repo).iterdir())
    real = keys(repo)
    other_tree = real[names[1]][0]  # type: ignore[index]
    (models(repo) / f"zz\t040000 tree {other_tree}\t{names[0]}").write_text("x\n")
    (models(repo) / f"{names[-1]}~").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "odd names")
    aged(repo)
    found = keys(repo)
    assert [key[0] for key in found.values() if key] == [key[0] for key in real.values() if key]  # type: ignore[index]


def test_git_looks_while_the_stored_entries_are_read(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summaries' three git processes are started before the first stored entry is read, and collected after
    the last: git's ``lstat`` of every file runs while regops reads and checks its entries. Same answer."""
    expected = from_files(repo, monkeypatch)
    assert status(repo) == expected  # the index is warm
    order: list[str] = []
    start, output, entry = freshness._start, freshness._output, SummaryIndex.entry

    def started(cwd: Path, *args: str, feed: bool = False) -> subprocess.Popen[bytes]:
        order.append(args[0])
        return start(cwd, *args, feed=feed)

    def collected(process: subprocess.Popen[bytes], feed: bytes = b"") -> bytes | None:
        order.append("collected")
        return output(process, feed)

    def read(index: SummaryIndex, folder: Path, part: str, since: int | None = None) -> dict[object, object]:
        order.append("entry")
        return entry(index, folder, part, since)

    monkeypatch.setattr(freshness, "_start", started)
    monkeypatch.setattr(freshness, "_output", collected)
    monkeypatch.setattr(SummaryIndex, "entry", read)
    assert status(repo) == expected
    count = len(list(models(repo).iterdir()))
    assert order == [
        "rev-parse",
        "collected",
        "ls-tree",
        "diff-index",
        "ls-files",
        *["entry"] * count,
        *["collected"] * 3,
    ]


def test_git_runs_to_its_end_before_it_is_asked_however_long_its_listing(tmp_path: Path) -> None:
    """Git's look at a folder of 4,000 files (``ls-files``: ~150 KB, more than a pipe holds) ends on its own while
    the caller is busy elsewhere, so what is left when the caller asks is reading it; the answer is the same."""
    folder = tmp_path / "registry" / "models" / "m"
    folder.mkdir(parents=True)
    for i in range(4000):
        (folder / f"version-with-a-long-name-{i:05}.yaml").write_bytes(b"")
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-q", "-m", "files")):
        git(tmp_path, *args)
    started = freshness._start_view(models(tmp_path))
    assert started is not None
    deadline = time.monotonic() + 10
    while any(process.poll() is None for process in started) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [process.poll() for process in started] == [0, 0, 0]  # ended, none of them read yet
    view = freshness._view(started)
    assert view is not None
    assert view == ({"m": git(tmp_path, "rev-parse", "HEAD:registry/models/m").strip()}, set())


def history_text(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``regops history``'s text of what the files say (no cache at all)."""
    with monkeypatch.context() as m:
        m.setenv("REGOPS_NO_CACHE", "1")
        return report.history_text(api.history_moves(registry=str(root / "registry")))


def test_history_is_rendered_while_git_looks_and_kept_when_git_vouches(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``history``'s text is made from the stored entries before git's answer is collected, and kept because git
    then vouches for every one of them: one rendering, the files' text."""
    expected = history_text(repo, monkeypatch)
    assert api.history(registry=str(repo / "registry"))  # the index is warm
    order: list[str] = []
    output = freshness._output

    def collected(process: subprocess.Popen[bytes], feed: bytes = b"") -> bytes | None:
        order.append("collected")
        return output(process, feed)

    def render(history: queries.History) -> str:
        order.append("render")
        return report.history_text(history)

    monkeypatch.setattr(freshness, "_output", collected)
    found = api.history_moves(registry=str(repo / "registry"), render=render)
    assert found.rendered == expected
    assert order == ["collected", "render", *["collected"] * 3]  # rev-parse's, the rendering, then git's look


def test_a_rendering_made_before_git_answers_is_dropped_when_git_does_not_vouch(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model edited since its entry was stored: the text made from the stored entries while git looked is
    dropped, the model is read again, and the text made from what was rebuilt is the answer (the edit shows)."""
    assert api.history(registry=str(repo / "registry"))  # the index is warm
    promote(candidate(repo))
    expected = history_text(repo, monkeypatch)
    rendered: list[str] = []

    def render(history: queries.History) -> str:
        rendered.append(report.history_text(history))
        return rendered[-1]

    found = api.history_moves(registry=str(repo / "registry"), render=render)
    assert found.rendered == expected == rendered[1]
    assert len(rendered) == 2
    assert "2026-11-30 10:00" not in rendered[0]  # the stored entry's text, dropped
    assert "2026-11-30 10:00" in expected  # the promotion made since
    assert api.history_moves(registry=str(repo / "registry"), render=render).rendered == expected  # indexed again


# --- git's look begun by the command line, before the verb's imports ------------------------------------------------


def test_a_look_begun_answers_the_first_ask_inside_its_block_and_never_after_it(repo: Path) -> None:
    """``regops status``/``history`` begin git's look before importing the verb: the verb's first ask of the folder
    gets it, with the answer git gives when asked then; a look nobody asked for is stopped with its command, so a
    later ask (an edit made since) looks again."""
    names = sorted(p.name for p in models(repo).iterdir())
    with freshness.looking(models(repo)):
        inside = dict(model_keys(models(repo), names))
    assert inside == keys(repo) and all(inside.values())
    with freshness.looking(repo / "registry" / ".." / "registry" / "models"):  # the same folder, named otherwise
        pass
    promote(candidate(repo))
    assert keys(repo)[first(repo).name] is None
    assert [name for name, key in keys(repo).items() if key] == names[1:]


def test_the_cli_begins_git_before_the_verb_and_leaves_no_git_process_behind(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = report.status_text(from_files(repo, monkeypatch))
    assert status(repo) == from_files(repo, monkeypatch)  # the index is warm
    order: list[str] = []
    started: list[subprocess.Popen[bytes]] = []
    start, verb = freshness._start, cli.verb

    def starting(cwd: Path, *args: str, feed: bool = False) -> subprocess.Popen[bytes]:
        order.append(args[0])
        started.append(start(cwd, *args, feed=feed))
        return started[-1]

    def running(name: str) -> cli.Verb:
        order.append(name)
        return verb(name)

    monkeypatch.setattr(freshness, "_start", starting)
    monkeypatch.setattr(cli, "verb", running)
    assert cli.main(["status", "--registry", str(repo / "registry")]) == 0
    assert capsys.readouterr().out == expected + "\n"
    assert order == ["rev-parse", "ls-tree", "diff-index", "ls-files", "reads:cmd_status"]
    assert cli.main(["history", "no-such-model", "--registry", str(repo / "registry")]) == 1  # fails before asking
    assert "no-such-model" in capsys.readouterr().err
    assert order[5:] == ["rev-parse", "ls-tree", "diff-index", "ls-files", "reads:cmd_history"]
    assert [process.returncode is not None for process in started] == [True] * 8


# Run as the ``regops`` command (regops.launch): reports which child processes the command has when regops.cli is
# about to be imported, and when the command is done.
LAUNCH = """
import os, sys, time
from pathlib import Path

def children():  # a child just started may still bear this program's name for a moment: its exec is finishing
    pids = [p for t in Path(f"/proc/{os.getpid()}/task").iterdir() for p in (t / "children").read_text().split()]
    for _ in range(100):
        names = sorted(Path(f"/proc/{pid}/comm").read_text().strip() for pid in pids)
        if "python" not in "".join(names):
            break
        time.sleep(0.01)
    return names

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "regops.cli":
            print("importing regops.cli:", children(), file=sys.stderr)

sys.meta_path.insert(0, Spy())
from regops.launch import run
code = run()
print("done:", children(), file=sys.stderr)
raise SystemExit(code)
"""


def launched(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LAUNCH, *argv], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
def test_the_command_begins_git_before_importing_the_cli_and_leaves_no_git_process_behind(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected = report.status_text(from_files(repo, monkeypatch)) + "\n"
    assert status(repo) == from_files(repo, monkeypatch)  # the index is warm
    for registry in (["--registry", str(repo / "registry")], [f"--registry={repo / 'registry'}"]):
        done = launched(tmp_path, "status", *registry)
        assert (done.returncode, done.stdout) == (0, expected)
        assert done.stderr.splitlines() == ["importing regops.cli: ['git', 'git', 'git']", "done: []"]
    # No --registry: the current folder's registry/ is guessed.
    done = launched(repo, "history", "--bots")
    assert done.returncode == 0
    assert done.stderr.splitlines() == ["importing regops.cli: ['git', 'git', 'git']", "done: []"]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
def test_a_wrong_guess_of_the_command_begins_no_git_early_or_stops_it_and_answers_the_same(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected = report.status_text(from_files(repo, monkeypatch)) + "\n"
    done = launched(tmp_path, "status", "--reg", str(repo / "registry"))  # an abbreviation argparse takes
    assert (done.returncode, done.stdout) == (0, expected)
    assert done.stderr.splitlines() == ["importing regops.cli: []", "done: []"]
    done = launched(tmp_path, "status", "--registry", str(repo / "registry"), "--no-such-flag")  # does not parse
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in done.stderr
    assert done.stderr.splitlines()[0] == "importing regops.cli: ['git', 'git', 'git']"
    assert done.stderr.splitlines()[-1] == "done: []"
