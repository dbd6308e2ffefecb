"""The cold path of ``validate --base`` made cheaper, and every shortcut shown to give the answers as before.

The model names listed once per settled folder (a folder changed since is listed again, the same second or
not), the first line of each file read without a text stream, the layout walked without a ``Path`` per entry,
and the ``regops`` process ending without the collector walking its heap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regops import api, cli, policy, report, store
from regops.adapters import git as gitadapter
from regops.errors import RegopsError
from regops.freshness import RACY_NS
from regops.registry import Registry
from tests.conftest import Tree, git

REPO = Path(__file__).resolve().parents[1]
NOW = __import__("datetime").datetime(2026, 12, 1, tzinfo=__import__("datetime").UTC)


def _settle(folder: Path) -> None:
    """Wait until ``folder`` was last changed more than RACY_NS ago (its ctime cannot be set back)."""
    changed = max(folder.stat().st_mtime_ns, folder.stat().st_ctime_ns)
    time.sleep(max(0.0, (changed + RACY_NS - time.time_ns()) / 1e9) + 0.05)


def test_a_model_folder_added_removed_or_renamed_after_the_names_were_listed_is_seen(tree: Tree) -> None:
    models = tree.path("models")
    _settle(models)
    registry = Registry.load(tree.root)
    before = registry.model_names()
    assert registry.model_names() == before  # listed once, answered again from the listing

    (models / "aaa-new").mkdir()
    assert registry.model_names() == sorted([*before, "aaa-new"])
    shutil.rmtree(models / before[0])
    assert before[0] not in registry.model_names()
    (models / before[1]).rename(models / "zzz-renamed")
    assert registry.model_names() == sorted([*before[2:], "aaa-new", "zzz-renamed"])


def test_a_folder_changed_in_the_same_instant_as_its_listing_is_listed_again(tree: Tree) -> None:
    """git's racy case: a folder changed within RACY_NS of the look is never answered from a listing, even when a
    change then keeps its mtime (set back by hand)."""
    models = tree.path("models")
    registry = Registry.load(tree.root)
    assert "aaa-new" not in registry.model_names()
    stamp = models.stat()
    (models / "aaa-new").mkdir()
    os.utime(models, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))

    assert "aaa-new" in registry.model_names()


def test_a_settled_registry_lists_its_models_folder_once_per_check(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was one scandir of the models folder each time a rule asked for the model names (~60 a check)."""
    _settle(tree.path("models"))
    registry = Registry.load(tree.root)
    models = str(registry.root / "models")
    listed: list[str] = []
    scandir = os.scandir

    def counting(path: str | Path = ".") -> object:
        listed.append(str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    problems = policy.check(registry, now=NOW)

    assert listed.count(models) <= 2, listed.count(models)
    monkeypatch.setattr(os, "scandir", scandir)
    assert problems == policy.check(Registry.load(tree.root), now=NOW)


@pytest.mark.parametrize(
    ("head", "line"),
    [
        (b"{comment}\n", "{comment}"),
        (b"\xef\xbb\xbf{comment}\n", "{comment}"),  # a BOM
        (b"{comment}\r\n", "{comment}"),
        (b"{comment}\rmodel: x\n", "{comment}"),  # an old Mac line break
        (b"{comment} \n", "{comment} "),
        (b"{comment}" + b"x" * 70_000 + b"\n", None),  # a first line longer than any one read
        (b"\n{comment}\n", ""),
    ],
)
def test_the_schema_line_is_read_as_a_text_streams_first_line(tree: Tree, head: bytes, line: str | None) -> None:
    """Each case against what a text stream's readline gives (the rule read it so before)."""
    relative = "models/sentiment/1.3.0.yaml"
    comment = "# yaml-language-server: $schema=../../../schemas/model-version.schema.json"
    text = tree.read(relative)
    body = text.split("\n", 1)[1]
    path = tree.write(relative, head.replace(b"{comment}", comment.encode()) + body.encode())
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        expected = handle.readline().rstrip("\r\n")
    if line is not None:
        assert expected == line.replace("{comment}", comment)

    found = [p for p in policy.schema_comments(Registry.load(tree.root), NOW) if p.path.endswith(relative)]

    assert bool(found) == (expected != comment)


def test_the_layout_walk_reports_the_same_misplaced_things_in_and_below_a_checked_model(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree.write("models/sentiment/notes/readme.txt", "x")
    tree.write("models/sentiment/notes/.hidden", "x")
    tree.write("models/sentiment/1.9.0.yml", "x")
    tree.write("models/sentiment/attestations/1.3.0/model.sigstore.json", "{}")
    tree.write("stray.txt", "x")
    registry = Registry.load(tree.root)
    registry.limit(["sentiment"])

    found = sorted((p.path, p.message.split(":")[0]) for p in policy.layout(registry, NOW))

    assert found == [
        ("registry/models/sentiment/1.9.0.yml", "use the .yaml extension"),
        ("registry/models/sentiment/notes/.hidden", "is hidden"),
        ("registry/models/sentiment/notes/readme.txt", "not part of the registry layout"),
        ("registry/stray.txt", "not part of the registry layout"),
    ]


def test_a_stray_file_in_an_unchecked_models_folder_is_left_to_the_full_check(tree: Tree) -> None:
    tree.write("models/sentiment/notes.txt", "x")
    registry = Registry.load(tree.root)
    others = [name for name in registry.model_names() if name != "sentiment"]
    registry.limit(others)

    assert [p for p in policy.layout(registry, NOW) if "notes.txt" in p.path] == []
    registry.limit(None)
    assert [p.path for p in policy.layout(registry, NOW) if "notes.txt" in p.path] == [
        "registry/models/sentiment/notes.txt"
    ]


PROBE = """
import atexit, gc, runpy, sys
atexit.register(lambda: sys.stderr.write(f"frozen at exit: {gc.get_freeze_count() > 0}\\n"))
sys.argv = ["regops", *sys.argv[1:]]
runpy.run_module("regops", run_name="__main__", alter_sys=True)
"""


def test_the_regops_command_ends_without_collecting_its_heap_and_says_the_same(tmp_path: Path) -> None:
    """At exit the collector skips what the command built (~0.07 s at 100,000 versions); what it printed and its
    exit code are main()'s."""
    shutil.copytree(REPO / "registry", tmp_path / "registry")
    env = {**os.environ, "REGOPS_CACHE_DIR": str(tmp_path / "cache")}
    argv = ["validate", "--registry", str(tmp_path / "registry")]

    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, check=False)

    assert "frozen at exit: True" in done.stderr
    assert (done.returncode, done.stdout) == (0, "ok: no problems\n")


def _committed(tmp_path: Path) -> Path:
    """The example registry and its schemas committed on ``main`` of a new repository."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "registry", repo / "registry")
    shutil.copytree(REPO / "schemas", repo / "schemas")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    return repo


def test_a_pr_check_of_a_settled_clone_reports_what_the_full_check_reports(tmp_path: Path) -> None:
    """validate --base on a registry whose folders are settled (names answered from one listing), one version
    file broken and one model folder added after the first check."""
    repo = _committed(tmp_path)
    _settle(repo / "registry" / "models")
    assert api.validate(registry=repo / "registry", base="main", now=NOW) == []

    version = sorted((repo / "registry" / "models" / "sentiment").glob("1.*.yaml"))[0]
    version.write_text(version.read_text(encoding="utf-8").replace("created_by:", "created_by: 12\nx:", 1))
    (repo / "registry" / "models" / "sentiment" / "notes.txt").write_text("x")
    incremental = api.validate(registry=repo / "registry", base="main", now=NOW)

    assert incremental
    assert incremental == api.validate(registry=repo / "registry", base="main", now=NOW, full=True)


BATCH = """
import sys
from pathlib import Path
from regops import store
root = Path(sys.argv[1])
files = {path: "dataset" for path in sorted(root.glob("*/*/*.yaml"))}
loaded = store.load_many(files, base=root, cache=store.ParseCache(None))
print(sum(1 for result in loaded.values() if result.problems))
"""


def test_a_parallel_batch_imports_pyyaml_once_in_the_parent_not_in_every_worker(tmp_path: Path) -> None:
    """The workers are forked with PyYAML and the loader already built (each imported it again before, ~0.03 s of
    CPU a worker); the files are parsed and checked as before."""
    for i in range(store._PARALLEL_THRESHOLD + 10):
        folder = tmp_path / "datasets" / f"d{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"v{i}.yaml").write_text(f"name: d{i % 7}\nversion: v{i}\n")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}

    done = subprocess.run(
        [sys.executable, "-c", BATCH, str(tmp_path)], capture_output=True, text=True, env=env, check=True
    )

    imports = [line for line in done.stderr.splitlines() if line.split("|")[-1].strip() == "yaml"]
    assert len(imports) == 1, imports
    assert done.stdout.strip() == str(store._PARALLEL_THRESHOLD + 10)  # each lacks required fields, as before


PREPARED = """
import time
from regops import files, schema
schema.prepare()
built = [files.ModelVersion, files.ModelConfig, files.DatasetVersion, files.RegistryConfig]
print(all(cls.__pydantic_complete__ for cls in built), files.Code.__pydantic_complete__)
"""


def test_prepare_builds_the_four_file_kinds_validators_and_no_nested_models_own() -> None:
    """validate --base builds them while git runs (schema.prepare): a validator left to its first use was built in
    the batch instead, on the critical path (~0.13 s at 100k); a nested model's own is never needed."""
    done = subprocess.run([sys.executable, "-c", PREPARED], capture_output=True, text=True, check=True)

    assert done.stdout.split() == ["True", "False"]


# --- validate --base begins git's comparison before the verb's imports (cli._comparing, git.comparing) -------------


def _begun_and_ended() -> None:
    """Wait for the git processes ``comparing`` began (so a file made afterwards is one git did not see)."""
    for running in gitadapter._BEGUN.values():
        for process in running.processes:
            process.wait()


def _broken_model(repo: Path) -> Path:
    """A version file nobody committed, in a model folder the commit did not touch: invalid YAML."""
    folder = next(p for p in sorted((repo / "registry" / "models").iterdir()) if p.is_dir())
    path = folder / "9.9.9.yaml"
    path.write_text("version: [unclosed\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("given", ["registry", "."])
def test_validate_base_answers_from_the_comparison_begun_when_the_command_began(tmp_path: Path, given: str) -> None:
    """The verb's check uses git's look begun before its imports, whether --registry names the registry folder or
    the repository holding registry/: a file made after that look is not in it (on a command line nothing writes
    in between; here the test does, to show which look answered)."""
    repo = _committed(tmp_path)
    args = cli._parser().parse_args(["validate", "--base", "main", "--registry", str(repo / given)])

    with cli._looking(args):
        _begun_and_ended()
        broken = _broken_model(repo)
        during = api.validate(registry=repo / "registry", base="main", now=NOW)
    after = api.validate(registry=repo / "registry", base="main", now=NOW)

    assert during == []
    assert [p.path for p in after] == [str(broken.relative_to(repo))]
    assert gitadapter._BEGUN == {}


def test_a_comparison_nobody_asked_for_is_stopped_and_never_answers_a_later_command(tmp_path: Path) -> None:
    repo = _committed(tmp_path)
    other = cli._parser().parse_args(["validate", "--base", "main", "--registry", str(tmp_path / "elsewhere")])

    with cli._looking(other), gitadapter.comparing(repo, "main", "registry"):
        begun = [p for running in gitadapter._BEGUN.values() for p in running.processes]
        _begun_and_ended()
        broken = _broken_model(repo)
    found = api.validate(registry=repo / "registry", base="main", now=NOW)

    assert len(begun) == 6
    assert all(process.returncode is not None for process in begun)
    assert gitadapter._BEGUN == {}
    assert [p.path for p in found] == [str(broken.relative_to(repo))]


@pytest.mark.parametrize("ref", ["main", "nosuch"])
def test_validate_base_says_the_same_when_its_comparison_was_begun_early(
    tmp_path: Path, ref: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edited version file (problems), or a base git does not know (the error and how to fetch it): the command
    line, which begins git early, says what the check said without it."""
    repo = _committed(tmp_path)
    version = sorted((repo / "registry" / "models" / "sentiment").glob("1.*.yaml"))[0]
    version.write_text(version.read_text(encoding="utf-8").replace("created_by:", "created_by: 12\nx:", 1))
    argv = ["validate", "--base", ref, "--registry", str(repo / "registry"), "--format", "json"]
    try:
        said = report.problems_json([*api.validate(registry=repo / "registry", base=ref), *api.advice(registry=repo)])
    except RegopsError as e:
        said = str(e)

    code = cli.main(argv)
    shown = capsys.readouterr()

    assert code == 1
    assert said in shown.out + shown.err if ref == "nosuch" else json.loads(shown.out) == json.loads(said)


def test_validate_base_without_git_says_git_is_missing_and_begins_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _committed(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))

    code = cli.main(["validate", "--base", "main", "--registry", str(repo / "registry")])

    assert code == 1
    assert "git is not installed; --base needs it" in capsys.readouterr().err
    assert gitadapter._BEGUN == {}


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
def test_the_command_begins_the_comparison_before_importing_the_cli_and_answers_as_main_does(tmp_path: Path) -> None:
    """`regops validate --base REF` (regops.launch) has git's three comparing processes running while regops.cli is
    imported, none left at the end, and says what main() says: here, the broken file nobody committed."""
    from tests.test_freshness import launched

    repo = _committed(tmp_path)
    broken = _broken_model(repo)
    argv = ["validate", "--json", "--base", "main", "--registry", str(repo / "registry")]
    expected = [p.path for p in api.validate(registry=repo / "registry", base="main", now=None)]

    for line in (argv, [*argv[:2], "--base=main", *argv[4:]]):
        done = launched(tmp_path, *line)
        assert done.returncode == 1, done.stderr
        assert [p["path"] for p in json.loads(done.stdout)] == expected == [str(broken.relative_to(repo))]
        assert done.stderr.splitlines() == ["importing regops.cli: ['git', 'git', 'git']", "done: []"]


# --- validate --base builds the pydantic models beside the parse workers, once git has answered ----------------------


def _generated_pr(tmp_path: Path) -> tuple[Path, Path]:
    """A generated registry of one model with more versions than one process parses alone while the schema is still
    to be built (store._BESIDE_BUILD_THRESHOLD; built first, the batch would stay in one process, under
    store._PARALLEL_THRESHOLD), committed on main, and one of its version files then edited (a problem): the
    repository and the edited file."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from generate import generate

    repo = tmp_path / "repo"
    generate(repo, 1, store._BESIDE_BUILD_THRESHOLD + 20, seed=4)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    edited = sorted((repo / "registry" / "models" / "sentiment").glob("0.*.yaml"))[0]
    edited.write_text(edited.read_text(encoding="utf-8").replace("created_by:", "created_by: 12\nx:", 1))
    return repo, edited


def test_validate_base_builds_the_schema_beside_the_parse_workers_and_says_what_the_full_check_says(
    tmp_path: Path,
) -> None:
    """git, begun when the command began, has answered before the verb's imports are done: the pydantic models
    (~0.25 s of CPU) are built after the parse workers are forked, beside them (a build before left one core idle),
    and the command says what the full check says; the canary's and the approval rules' modules are not imported."""
    repo, edited = _generated_pr(tmp_path)
    argv = ["validate", "--json", "--base", "main", "--registry", str(repo / "registry")]
    env = {**os.environ, "REGOPS_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPROFILEIMPORTTIME": "1"}

    done = subprocess.run([sys.executable, "-m", "regops", *argv], capture_output=True, text=True, env=env, check=False)

    imported = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert imported.index("concurrent.futures.process") < imported.index("regops.files")
    assert not {"regops.canary", "regops.approvals"} & set(imported)
    full = api.validate(registry=repo / "registry", base="main", full=True)
    assert done.returncode == 1
    assert json.loads(done.stdout) == json.loads(report.problems_json([*full, *api.advice(registry=repo)]))
    assert {p["path"] for p in json.loads(done.stdout)} == {str(edited.relative_to(repo))}


def _slow_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git on PATH that waits half a second before running (a large working tree's stat, in a small one)."""
    real = shutil.which("git")
    assert real is not None
    programs = tmp_path / "slow-git"
    programs.mkdir()
    (programs / "git").write_text(f'#!/bin/sh\nsleep 0.5\nexec "{real}" "$@"\n', encoding="utf-8")
    (programs / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{programs}{os.pathsep}{os.environ['PATH']}")


def test_work_that_only_pays_while_git_compares_is_done_then_and_the_answer_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate --base imports the worker pool while git is still comparing (~12 ms it would otherwise wait), and
    not when git has answered before (a small registry, whose batch needs no pool)."""
    from regops.workspace import changed_at_ref

    repo = _committed(tmp_path)
    broken = _broken_model(repo)
    opened = Registry(repo / "registry")
    with gitadapter.comparing(repo, "main", "registry"):
        _begun_and_ended()
        quick = changed_at_ref(opened, "main", idle=lambda: pytest.fail("git had answered"))
    _slow_git(tmp_path, monkeypatch)
    done: list[str] = []

    slow = changed_at_ref(opened, "main", idle=lambda: done.append("idle"))

    assert done == ["idle"]
    assert slow == quick == ({str(broken.relative_to(repo))}, {})


SMALL_BATCH = """
import sys
from pathlib import Path
from regops import schema, store
root = Path(sys.argv[1])
if sys.argv[2] == "built":
    schema.prepare()
files = {path: "dataset" for path in sorted(root.glob("*/*/*.yaml"))}
loaded = store.load_many(files, base=root, cache=store.ParseCache(None))
print([(store.display_path(path, root), result) for path, result in loaded.items()])
"""


def test_a_small_cold_batch_is_parsed_beside_the_schema_build_and_reads_the_same(tmp_path: Path) -> None:
    """A batch too small to pay for workers once the schema's validators are built (store._PARALLEL_THRESHOLD) is
    parsed on them while they are still to be built (~0.25 s here, that the parse runs beside: validate --base at
    10,000 versions reads ~250 files); with the validators built, it is read in this process. The same either way."""
    for i in range(store._BESIDE_BUILD_THRESHOLD + 20):
        folder = tmp_path / "datasets" / f"d{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"v{i}.yaml").write_text(f"name: d{i % 5}\nversion: v{i}\n" if i % 4 else "name: [\n")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}

    def run(how: str) -> tuple[list[str], str]:
        done = subprocess.run(
            [sys.executable, "-c", SMALL_BATCH, str(tmp_path), how], capture_output=True, text=True, env=env, check=True
        )
        return [line.split("|")[-1].strip() for line in done.stderr.splitlines()], done.stdout

    (cold, read_cold), (warm, read_warm) = run("cold"), run("built")

    assert "multiprocessing" in cold
    assert cold.index("multiprocessing") < cold.index("regops.files")
    assert "multiprocessing" not in warm
    assert read_cold == read_warm
    assert (
        read_cold.count("problems=(Problem(") == store._BESIDE_BUILD_THRESHOLD + 20
    )  # each lacks fields or parses not


def test_a_parallel_batch_sends_back_what_a_single_process_reads() -> None:
    """The workers send each chunk back as marshal data (a third of pickling's CPU): the data, the problems and
    their positions are what one process finds — text, numbers, infinities, booleans, nulls, aliases, refusals."""
    from regops import schema

    schema.prepare({"dataset"})
    valid = (
        "name: d{0}\nversion: v{0}\nhash: blake3:{1}\ncreated_at: 2026-05-16T10:05:27Z\ncreated_by: erin\n"
        "uri: s3://acme/d{0}/\nsize_bytes: {0}\nfile_count: 1\n"
    )
    odd = ["name: .inf\n", "name: 0x1F\n", "name: ~\n", "name: true\n", "x: &a [1, 2]\ny: *a\n", "name: [\n", "- 1\n"]
    jobs = [
        ((valid.format(i, f"{i:064x}") if i % 2 else odd[i // 2 % len(odd)]).encode(), f"d/{i}.yaml", "dataset")
        for i in range(store._PARALLEL_THRESHOLD + 20)
    ]

    batch = store._load_all(jobs)

    assert batch == [store._load(*job) for job in jobs]
    assert [loaded.data is not None for loaded in batch] == [bool(i % 2) for i in range(len(jobs))]
    assert {str(p) for loaded in batch[:14] for p in loaded.problems} >= {
        "d/0.yaml: name: expected a string, found float inf (quote it to make it a string)",
        "d/2.yaml: name: expected a string, found int 31 (quote it to make it a string)",
        "d/4.yaml: name: expected a string, found null",
        "d/6.yaml: name: expected a string, found bool True (quote it to make it a string)",
        "d/10.yaml:2:1: not valid YAML: while parsing a flow node; did not find expected node content",
        "d/12.yaml:1:1: the top level must be a mapping of fields, found a list",
    }
