"""`regops site build`: the pages written, what they say, escaping, and where the site may not be written.

What the pages do in a browser (links, the serving view, charts, accessibility) is tests/test_site_browser.py."""

from __future__ import annotations

import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from regops import api, site
from regops.cli import main
from regops.errors import InvalidRegistryError
from regops.registry import HOLDER_STAGES, ModelEntry, Registry
from regops.site import MARKER, SiteError
from tests.conftest import REPO, Tree

sys.path.insert(0, str(REPO / "benchmarks"))
from generate import generate

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example registry the README's quickstart runs on."""
    shutil.copytree(REPO / "registry", tmp_path / "repo" / "registry")
    return tmp_path / "repo" / "registry"


def test_build_writes_an_index_a_page_per_model_and_per_version_and_the_serving_view(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "site"
    assert main(["site", "build", "--registry", str(example), "--out", str(out)]) == 0
    registry = Registry.load(example)
    expected = {"index.html", "serving.html", "serving.js", "style.css", MARKER}
    for name in registry.model_names():
        expected |= {f"models/{name}/index.html"} | {f"models/{name}/{r.version}.html" for r in registry.versions(name)}
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == expected
    pages = sum(1 for p in expected if p.endswith(".html"))
    assert capsys.readouterr().out == f"{out}: {pages} pages written; open {out / 'index.html'}\n"


def test_the_index_names_each_model_s_current_holders_and_owners(example: Path, tmp_path: Path) -> None:
    api.site_build(registry=example, out=tmp_path / "site", now=NOW)
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    for status in api.status(registry=example):
        row = re.search(rf'<tr><td><a href="models/{status.model}/index.html">.*?</tr>', index)
        assert row, status.model
        cells = re.findall(r"<td>(.*?)</td>", row.group())
        holders = [getattr(status, stage) for stage in ("prod", "staging", "dev")]
        shown = [re.sub(r"<[^>]+>", "", cell) for cell in cells[3:6]]
        assert shown == [h.version if h else "–" for h in holders]
    assert "alice, @acme/nlp-team" in index


def test_the_serving_changes_are_the_registry_s_answers_at_every_moment_between_them(example: Path) -> None:
    registry = Registry.load(example)
    data = site.site_data(registry, now=NOW)
    sentiment = next(m for m in data.models if m.name == "sentiment")
    for change, after in zip(sentiment.serving, [*sentiment.serving[1:], None], strict=True):
        end = after.at if after else NOW
        probes = [change.at, change.at + (end - change.at) / 2, end - timedelta(seconds=1)]
        for moment in probes:
            for stage in HOLDER_STAGES:
                span = registry.holder("sentiment", stage, at=moment)
                assert change.holders[stage] == (span.version if span else None), (moment, stage)
    # The rollback of 1.4.0: 1.3.1 back in prod from the moment PR #76 records.
    rollback = next(c for c in sentiment.serving if c.at == datetime(2026, 11, 3, 19, 42, 16, tzinfo=UTC))
    assert rollback.holders["prod"] == "1.3.1"


def test_the_serving_changes_of_a_long_generated_history_are_the_registry_s_answers(tmp_path: Path) -> None:
    # Promotions, same-second hand-overs and rollbacks over 40 versions a model: the one-pass walk agrees with
    # holder(at=...) at each change, just before the next and between them, and misses no change.
    registry = Registry.load(generate(tmp_path / "gen", 3, 40, seed=3))
    data = site.site_data(registry, now=NOW)
    rollbacks = 0
    for model in data.models:
        ends = [c.at for c in model.serving[1:]] + [NOW]
        for change, end in zip(model.serving, ends, strict=True):
            for moment in (change.at, change.at + (end - change.at) / 2, end - timedelta(seconds=1)):
                asked = {s: registry.holder(model.name, s, at=moment) for s in HOLDER_STAGES}
                assert change.holders == {s: span.version if span else None for s, span in asked.items()}
        rollbacks += sum(e.from_ == "archived" and e.to == "prod" for e in model.history)
    assert rollbacks > 0 and sum(len(m.serving) for m in data.models) > 100


def test_while_two_versions_hold_prod_the_serving_changes_say_what_holder_says(tree: Tree) -> None:
    # By hand, 1.1.0 leaves prod four days after 1.0.0 comes back to it (validate refuses that, the site still
    # builds): inside the overlap the view answers what holder(at=...) answers, not the first in order.
    tree.replace(
        "models/sentiment/1.1.0.yaml",
        "to: archived, at: 2026-03-01T10:00:00Z",
        "to: archived, at: 2026-03-05T10:00:00Z",
    )
    registry = Registry.load(tree.root)
    serving = next(m for m in site.site_data(registry, now=NOW).models if m.name == "sentiment").serving
    inside = datetime(2026, 3, 3, tzinfo=UTC)
    shown = next(c for c, after in zip(serving, [*serving[1:], None], strict=True) if not after or after.at > inside)
    assert shown.at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    held = registry.holder("sentiment", "prod", at=inside)
    assert held is not None and shown.holders["prod"] == held.version


def test_the_model_page_marks_the_rollback_and_charts_every_version_s_score(example: Path, tmp_path: Path) -> None:
    api.site_build(registry=example, out=tmp_path / "site", now=NOW)
    page = (tmp_path / "site" / "models" / "sentiment" / "index.html").read_text(encoding="utf-8")
    rollbacks = re.findall(r"<tr>(?:(?!</tr>).)*rollback</strong>(?:(?!</tr>).)*</tr>", page)
    assert len(rollbacks) == 1
    assert ">1.3.1</a>" in rollbacks[0]
    assert "#76" in rollbacks[0]
    assert "archived → prod" in rollbacks[0]
    accuracy = re.search(r'<figure class="chart" data-metric="accuracy">.*?</figure>', page)
    assert accuracy
    assert accuracy.group().count('<circle class="point"') == len(Registry.load(example).versions("sentiment"))


def test_the_version_page_shows_files_with_digests_datasets_and_the_canary(example: Path, tmp_path: Path) -> None:
    api.site_build(registry=example, out=tmp_path / "site", now=NOW)
    record = Registry.load(example).version("sentiment", "1.2.1")
    page = (tmp_path / "site" / "models" / "sentiment" / "1.2.1.html").read_text(encoding="utf-8")
    for f in record.raw["artifacts"]["files"]:
        assert f"<td>{f['path']}</td>" in page
        assert f"<code>{f['sha256']}</code>" in page
    assert f"<code>{record.dataset_hash}</code>" in page
    assert "reviews@2025-09-08" in page
    assert "reviews-eval@v2" in page
    assert "<td>result</td><td>passed</td>" in page
    assert '<a href="../sentiment/1.1.0.html">sentiment@1.1.0</a>' in page
    assert "<dt>Signature</dt><dd>not signed</dd>" in page


def test_a_signature_in_the_version_file_is_shown_escaped(example: Path, tmp_path: Path) -> None:
    registry = Registry.load(example)
    registry.load_all()
    record = registry.version("sentiment", "1.2.1")
    record.raw["signature"] = {"state": "verified", "by": "<b>ci</b>"}
    site.build(site.site_data(registry, now=NOW), tmp_path / "site")
    page = (tmp_path / "site" / "models" / "sentiment" / "1.2.1.html").read_text(encoding="utf-8")
    assert "<dt>Signature</dt><dd>{&quot;by&quot;: &quot;&lt;b&gt;ci&lt;/b&gt;&quot;, &quot;state&quot;" in page


HOSTILE = "<script>window.pwned = 1</script><img src=x onerror=alert(1)>"


def hostile_tree(tree: Tree) -> Tree:
    """The test registry with markup wherever a person writes free text: a description, a reason, notes."""
    tree.replace("models/sentiment/model.yaml", "description: ", f"description: {HOSTILE!r} # ")
    path = next(p for p in sorted(tree.path("models/sentiment").glob("*.yaml")) if "reason:" in p.read_text())
    text = path.read_text(encoding="utf-8")
    tree.write(
        path.relative_to(tree.root).as_posix(), re.sub(r'reason: "[^"]*"', f"reason: {HOSTILE!r}", text, count=1)
    )
    return tree


def test_text_from_files_is_escaped_on_every_page(tree: Tree, tmp_path: Path) -> None:
    hostile_tree(tree)
    assert api.validate(registry=tree.root, now=NOW) == []
    pages = api.site_build(registry=tree.root, out=tmp_path / "site", now=NOW)
    texts = "".join(p.read_text(encoding="utf-8") for p in pages if p.suffix == ".html")
    assert "<script>window" not in texts
    assert "<img" not in texts
    assert texts.count("&lt;script&gt;window.pwned = 1&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;") >= 3


def test_a_rebuild_replaces_the_site_it_built_before(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    api.site_build(registry=example, out=out, now=NOW)
    (out / "models" / "gone.html").write_text("stale", encoding="utf-8")
    api.site_build(registry=example, out=out, now=NOW)
    assert not (out / "models" / "gone.html").exists()
    assert (out / "index.html").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site-")] == []


def test_a_folder_regops_did_not_build_is_never_replaced(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "docs"
    out.mkdir()
    (out / "notes.md").write_text("mine", encoding="utf-8")
    assert main(["site", "build", "--registry", str(example), "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"regops: error: {out} has files and no {MARKER}: it is not a site regops built, so nothing was written; "
        "pass --out an empty or new folder\n"
    )
    assert [p.name for p in out.iterdir()] == ["notes.md"]
    assert (out / "notes.md").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "repo"]


def test_a_file_where_the_site_should_go_is_left_alone(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.write_text("a file", encoding="utf-8")
    with pytest.raises(SiteError, match=f"^{re.escape(str(out))} is not a folder: pass --out a folder for the site$"):
        api.site_build(registry=example, out=out)
    assert out.read_text(encoding="utf-8") == "a file"


def test_a_registry_with_problems_builds_nothing_and_keeps_the_old_site(tree: Tree, tmp_path: Path) -> None:
    out = tmp_path / "site"
    api.site_build(registry=tree.root, out=out, now=NOW)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    tree.replace("models/sentiment/1.0.0.yaml", "stage: ", "stage: nowhere # ")
    with pytest.raises(InvalidRegistryError):
        api.site_build(registry=tree.root, out=out, now=NOW)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_version_page_lists_its_nearest_ancestors_as_lineage_gives_them(example: Path, tmp_path: Path) -> None:
    registry = Registry.load(example)
    full = registry.lineage("sentiment@1.5.0-rc.2")
    assert len(full) > site.ANCESTRY
    assert registry.lineage("sentiment@1.5.0-rc.2", limit=2) == full[:2]
    assert registry.lineage("sentiment@1.0.0", limit=10) == registry.lineage("sentiment@1.0.0")
    api.site_build(registry=example, out=tmp_path / "site", now=NOW)
    page = (tmp_path / "site" / "models" / "sentiment" / "1.5.0-rc.2.html").read_text(encoding="utf-8")
    table = re.search(r"<caption>This version and its ancestors.*?</table>", page)
    assert table
    assert re.findall(r"<tr><td>([^<]+)</td>", table.group()) == [node.ref for node in full[: site.ANCESTRY]]


def test_each_version_s_lineage_is_what_lineage_answers_for_it(example: Path) -> None:
    registry = Registry.load(example)
    data = site.site_data(registry, now=NOW)
    asked = {(m.name, r.version): registry.lineage(r.ref, limit=site.ANCESTRY) for m in data.models for r in m.versions}
    assert {(m.name, v): nodes for m in data.models for v, nodes in m.lineage.items()} == asked
    # The example reaches across models and to an external base, so those walks are in it.
    assert any(n.external for nodes in asked.values() for n in nodes)
    assert any(n.ref.partition("@")[0] != model for (model, _), nodes in asked.items() for n in nodes[1:])


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("workers", [2, 3])
def test_pages_rendered_in_several_processes_are_the_pages_one_process_writes(
    example: Path, tmp_path: Path, workers: int
) -> None:
    data = site.site_data(Registry.load(example), now=NOW)
    alone = site.build(data, tmp_path / "one", workers=1)
    shared = site.build(data, tmp_path / "many", workers=workers)
    assert [p.relative_to(tmp_path / "many") for p in shared] == [p.relative_to(tmp_path / "one") for p in alone]
    assert _files(tmp_path / "many") == _files(tmp_path / "one")
    assert len(data.models) >= workers


def test_the_build_reads_each_model_s_folder_once_and_holds_one_at_a_time(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every version of every model held at once took 1.66 GB at 100,000 versions: a model's folder is read when its
    pages are rendered and let go of once they are written; the index and the serving view are made from what was
    kept of each model (its summary), not from a second read."""
    reads: list[tuple[str, set[str]]] = []  # each folder read, and the folders held as it was
    build_model = Registry._build_model

    def counted(self: Registry, name: str, *args: Any) -> ModelEntry:
        reads.append((name, set(self._models)))
        return build_model(self, name, *args)

    monkeypatch.setattr(Registry, "_build_model", counted)
    generated = Registry.load(generate(tmp_path / "gen", 3, 40, seed=3))
    site.build(site.site_data(generated, now=NOW), tmp_path / "generated", workers=1)
    assert [name for name, _ in reads] == generated.model_names()  # once each, in order
    assert all(not held for _, held in reads) and not generated._models
    reads.clear()
    registry = Registry.load(example)  # its lineage reaches into other models: their folders are read on demand
    site.build(site.site_data(registry, now=NOW), tmp_path / "example", workers=1)
    assert {name for name, held in reads if not held} == set(registry.model_names())
    assert all(len(held) <= 1 for _, held in reads) and not registry._models  # a parent's read beside its child's


def test_a_problem_met_in_a_forked_worker_stops_the_build_with_its_problems(tree: Tree, tmp_path: Path) -> None:
    tree.replace("models/intent/1.0.0.yaml", "stage: ", "stage: nowhere # ")
    data = site.site_data(Registry.load(tree.root), now=NOW)
    assert [m.name for m in data.models] == ["distilled", "intent", "sentiment"]  # intent's pages: a forked worker's
    for workers in (2, 3):
        with pytest.raises(InvalidRegistryError) as raised:
            site.build(data, tmp_path / "site", workers=workers)
        assert [p.path for p in raised.value.problems] == ["registry/models/intent/1.0.0.yaml"]
    assert not (tmp_path / "site").exists()


def test_a_rebuild_keeps_the_unchanged_pages_and_writes_the_changed_ones(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    api.site_build(registry=example, out=out, now=NOW)
    page, index = out / "models" / "sentiment" / "1.0.0.html", out / "index.html"
    before = {p: (p.stat().st_ino, p.read_bytes()) for p in (page, index)}
    api.site_build(registry=example, out=out, now=NOW + timedelta(days=1))  # only the index says when it was built
    assert (page.stat().st_ino, page.read_bytes()) == before[page]
    assert index.stat().st_ino != before[index][0]
    assert index.read_bytes() != before[index][1]
    assert {p.stat().st_nlink for p in out.rglob("*") if p.is_file()} == {1}  # the old site's names are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "site"]


def test_a_page_of_the_old_site_that_is_a_link_out_of_it_is_written_afresh(example: Path, tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    api.site_build(registry=example, out=out, now=NOW)
    elsewhere.mkdir()
    linked, hard = out / "models" / "sentiment" / "1.0.0.html", out / "models" / "sentiment" / "1.1.0.html"
    for page in (linked, hard):
        (elsewhere / page.name).write_bytes(page.read_bytes())
    linked.unlink()
    linked.symlink_to(elsewhere / linked.name)
    hard.unlink()
    hard.hardlink_to(elsewhere / hard.name)
    api.site_build(registry=example, out=out, now=NOW)
    for page in (linked, hard):
        assert not page.is_symlink()
        assert page.stat().st_nlink == 1
        assert page.stat().st_ino != (elsewhere / page.name).stat().st_ino
        assert page.read_bytes() == (elsewhere / page.name).read_bytes()
        assert (elsewhere / page.name).stat().st_nlink == 1


def test_a_folder_of_the_old_site_that_links_out_of_it_is_not_reused(example: Path, tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    api.site_build(registry=example, out=out, now=NOW)
    shutil.copytree(out / "models" / "sentiment", elsewhere)
    shutil.rmtree(out / "models" / "sentiment")
    (out / "models" / "sentiment").symlink_to(elsewhere)
    api.site_build(registry=example, out=out, now=NOW)
    folder = out / "models" / "sentiment"
    assert not folder.is_symlink()
    for page in folder.iterdir():
        assert page.stat().st_nlink == 1
        assert page.read_bytes() == (elsewhere / page.name).read_bytes()
        assert (elsewhere / page.name).stat().st_nlink == 1
