import math

import numpy as np
import pytest

from tavaal.analysis.report import class_entropy, write_report
from tavaal.analysis.summary import summarize, to_csv, to_markdown
from tavaal.cli import main
from tavaal.errors import TavaalError
from tavaal.results import read_records, write_records
from tavaal.runner.toy_figure import run_toy

PNG = b"\x89PNG\r\n\x1a\n"


def _rec(method, trial, cycle, acc, **kw):
    r = {
        "dataset": "digits",
        "method": method,
        "trial": trial,
        "cycle": cycle,
        "n_labeled": 20 + 10 * cycle,
        "accuracy": acc,
        "train_seconds": 1.0,
        "select_seconds": 0.1,
        "selected": [cycle * 3, cycle * 3 + 1, cycle * 3 + 2],
        "selected_class_counts": [2, 1, 0] if method == "random" else [1, 1, 1],
    }
    r.update(kw)
    return r


@pytest.fixture
def records():
    recs = []
    acc = {"random": [[0.50, 0.60], [0.54, 0.62]], "tavaal": [[0.52, 0.66], [0.54, 0.70]]}
    for m, trials in acc.items():
        for t, cycles in enumerate(trials):
            for c, a in enumerate(cycles):
                extra = {}
                if m == "tavaal":
                    extra = {
                        "candidates": [0, 1, 2, 3, 4, 5, 6],
                        "scores": [0.1, 0.9, 0.3, 0.2, 0.8, 0.5, 0.4],
                        "score_name": "d_labeled_prob",
                        "candidate_losses": [2.0, 0.1, 1.5, 1.0, 0.2, 0.4, 0.3],
                    }
                    extra["selected"] = [0, 3, 2]
                recs.append(_rec(m, t, c, a, **extra))
    return recs


def test_summary_values_by_hand(records):
    rows = {(r.method, r.n_labeled): r for r in summarize(records)}
    r = rows[("tavaal", 30)]
    assert r.trials == 2 and math.isclose(r.mean, 0.68) and math.isclose(r.std, np.std([0.66, 0.70], ddof=1))
    assert math.isclose(r.gain_mean, ((0.66 - 0.60) + (0.70 - 0.62)) / 2)
    assert math.isclose(r.gain_std, np.std([0.06, 0.08], ddof=1))
    assert rows[("random", 20)].gain_mean is None and math.isclose(rows[("random", 20)].mean, 0.52)
    md = to_markdown(summarize(records))
    # Paired differences 0.06, 0.08: se 0.01, t(0.975, 1 df) = 12.7062; t = 7, p = 1 - 2 atan(7) / pi.
    assert "| 30 | 61.00 ± 1.41 (n=2) | 68.00 ± 2.83 (n=2) |" in md and "+7.00 [-5.71, +19.71], p=0.090" in md
    assert "tavaal,30,2,0.680000,0.028284,0.070000,0.014142,-0.057062,0.197062,0.090334" in to_csv(
        summarize(records)
    )


def test_summary_command_and_corrupt_line(tmp_path, capsys, records):
    path = tmp_path / "results.jsonl"
    write_records(path, records)
    assert main(["summary", str(tmp_path), "--format", "csv"]) == 0
    assert "method,n_labeled" in capsys.readouterr().out
    with open(path, "a") as f:
        f.write("{not json\n")
    assert main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"line {len(records) + 1} is not valid JSON" in err and "Traceback" not in err
    with pytest.raises(TavaalError, match="line 9"):
        read_records(path)


def test_class_entropy():
    assert class_entropy([5, 5]) == pytest.approx(math.log(2))
    assert class_entropy([3, 0, 0]) == 0.0


def test_report_writes_valid_pngs_and_an_index(tmp_path, records):
    write_records(tmp_path / "results.jsonl", records)
    index = write_report(tmp_path)
    text = index.read_text()
    for name in (
        "accuracy.png",
        "gain_over_random.png",
        "selection_entropy.png",
        "likelihood_histogram.png",
        "loss_vs_likelihood_tavaal.png",
    ):
        p = tmp_path / "report" / name
        assert p.read_bytes()[:8] == PNG and name in text
    assert "Skipped: the dataset's images could not be loaded" in text
    assert "68.00 ± 2.83" in text


def test_report_skips_figures_without_inputs(tmp_path, records):
    plain = [
        {k: v for k, v in r.items() if k not in ("scores", "candidate_losses", "score_name")}
        for r in records
        if r["method"] == "tavaal"
    ]
    write_records(tmp_path / "results.jsonl", plain)
    text = write_report(tmp_path, tmp_path / "out").read_text()
    assert "Skipped: no random baseline" in text
    assert (
        "Skipped: no records of an adversarial method (vaal, tavaal, ...) with discriminator scores" in text
    )
    assert "Skipped: no candidate_losses recorded" in text
    assert (tmp_path / "out" / "accuracy.png").read_bytes()[:8] == PNG


def test_report_image_grids_from_a_real_run(tmp_path):
    from tavaal.cli import main as cli

    out = tmp_path / "run"
    assert (
        cli(
            [
                "compare",
                "--preset",
                "digits",
                "--methods",
                "random,vaal",
                "--trials",
                "1",
                "--cycles",
                "2",
                "--epochs",
                "2",
                "--vae-epochs",
                "1",
                "--initial",
                "20",
                "--budget",
                "10",
                "--analysis",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    text = write_report(out).read_text()
    assert (out / "report" / "selected_vaal.png").read_bytes()[:8] == PNG
    assert "loss_vs_likelihood_vaal.png" in text


def test_toy_figure(tmp_path):
    paths = run_toy(tmp_path, methods=("lloss",), stage=2)
    assert [p.name for p in paths] == ["toy_lloss.png"] and paths[0].read_bytes()[:8] == PNG


def test_report_without_matplotlib_names_the_extra(monkeypatch, capsys, tmp_path):
    import sys

    from tavaal.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "tavaal.analysis.report", raising=False)
    (tmp_path / "results.jsonl").write_text("")
    code = main(["report", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'tavaal[report]'" in err and "Traceback" not in err


def test_each_equation_is_tagged_once_where_it_is_implemented():
    import re
    from pathlib import Path

    import tavaal

    tags: dict[str, list[str]] = {}
    for path in Path(tavaal.__file__).parent.rglob("*.py"):
        for n in re.findall(r"eq\. \((\d)\)", path.read_text()):
            tags.setdefault(n, []).append(path.name)
    assert {n: len(v) for n, v in tags.items()} == {str(n): 1 for n in range(1, 8)}, tags
    assert tags["1"] == tags["2"] == tags["4"] == tags["5"] == tags["6"] == ["losses.py"]
    assert tags["3"] == tags["7"] == ["adversarial.py"]


def test_compressed_records_read_like_plain_ones(tmp_path, records):
    import gzip

    write_records(tmp_path / "r.jsonl", records)
    (tmp_path / "r.jsonl.gz").write_bytes(gzip.compress((tmp_path / "r.jsonl").read_bytes()))
    assert read_records(tmp_path / "r.jsonl.gz") == read_records(tmp_path / "r.jsonl") == records


def test_figures_say_what_they_show(tmp_path, records, monkeypatch):
    """The last cycle trains without selecting: no empty entropy slot, the histogram names the cycle
    it shows; the grids name their trial; the axis reads "test accuracy (%)"."""
    from tavaal.analysis import report

    for r in records:
        r["trial"] += 3  # trials 3 and 4: the grids show trial 3
        if r["cycle"] == 1:  # what a real run records: the last cycle selects nothing
            r.update(selected=[], selected_class_counts=[0, 0, 0])
            for k in ("candidates", "scores", "score_name", "candidate_losses"):
                r.pop(k, None)
    figs = {}

    def keep(fig, path):
        figs[path.name] = fig
        return path

    monkeypatch.setattr(report, "save_figure", keep)
    x = np.zeros((40, 1, 8, 8), dtype=np.uint8)
    monkeypatch.setattr(report, "_load_images", lambda root: (x, ["a", "b", "c"]))
    write_records(tmp_path / "results.jsonl", records)
    write_report(tmp_path)
    assert figs["accuracy.png"].axes[0].get_ylabel() == "test accuracy (%)"
    ticks = [t.get_text() for t in figs["selection_entropy.png"].axes[0].get_xticklabels()]
    assert ticks == ["20"]  # cycle 1 (30 labeled) selected nothing: no empty slot
    hist = figs["likelihood_histogram.png"].axes[0]
    assert "last cycle that selected: cycle 0 (20 labeled)" in hist.get_title()
    assert [t.get_text() for t in hist.get_legend().get_texts()] == ["tavaal (2 trial(s))"]
    assert figs["selected_tavaal.png"]._suptitle.get_text().startswith("tavaal, trial 3: first 3")
