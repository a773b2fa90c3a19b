"""Messages that say what happened (the first hour on a laptop)."""

from tavaal.cli import main
from test_labeling import ARGS, _labels
from test_labeling import pool as pool  # noqa: F401 (the fixture)


def _query(tmp_path, root, truth, capsys, *extra):
    labels = _labels(tmp_path / "labels.csv", [(p, truth[p]) for p in sorted(truth)[:9]])
    args = [a for a in ARGS if a != "5"]
    args[args.index("--budget") + 1 : args.index("--budget") + 1] = ["15"]
    code = main(["query", "--pool", str(root), "--labels", str(labels), *args, *extra])
    return code, capsys.readouterr()


def test_query_says_how_many_were_written_and_what_to_do_next(tmp_path, pool, capsys):  # noqa: F811
    root, truth = pool
    code, out = _query(tmp_path, root, truth, capsys, "--out", str(tmp_path / "next.csv"))
    assert code == 0, out.err
    assert (
        f"15 images to label next, written to {tmp_path / 'next.csv'} (the first 10 are shown above)"
        in out.out
    )
    assert "add the rows to" in out.out and "(and 5 more)" not in out.out


def test_label_studio_query_points_to_the_import_command(tmp_path, pool, capsys):  # noqa: F811
    root, truth = pool
    code, out = _query(
        tmp_path, root, truth, capsys, "--format", "labelstudio", "--out", str(tmp_path / "t.json")
    )
    assert code == 0, out.err
    assert "tavaal labels import-labelstudio EXPORT.json --labels" in out.out
    assert "add the rows to" not in out.out


def test_options_are_never_abbreviated_and_version_prints(capsys):
    assert main(["run", "--dataset", "moons", "--epoch", "5"]) == 2  # main returns, never exits
    err = capsys.readouterr().err
    assert "unrecognized arguments: --epoch 5" in err and len(err.strip().splitlines()) == 1
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("tavaal ")


def test_presets_table_has_a_column_per_field_and_the_trials(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0].split()
    assert "trials" in head
    caltech = next(line for line in lines if line.startswith("caltech101 ")).split()
    assert len(caltech) == len(head) and caltech[head.index("model")] == "resnet18-imagenet"
    camvid = next(line for line in lines if line.startswith("camvid-quick ")).split()
    assert camvid[head.index("trials")] == "2"


def test_a_log_gets_one_plain_line_per_cycle_and_no_bar_codes(tmp_path, capsys):
    # Under pytest stderr is not a terminal: as in a log file.
    args = ["compare", "--preset", "moons", "--methods", "random", "--trials", "1", "--cycles", "2",
            "--epochs", "2", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr()
    assert "random trial 0 cycle 1: 30 labeled, accuracy" in out.out
    assert "\r" not in out.err and "\x1b[" not in out.err


def test_a_long_fit_says_so_once_with_how_to_go_faster(monkeypatch, caplog, digits):
    import logging

    import tavaal.train
    from conftest import tiny_config
    from tavaal.oracle import oracle_labels
    from tavaal.runner.cycle import make_learner

    monkeypatch.setattr(tavaal.train, "LONG_FIT_SECONDS", 0.0)  # every fit is "long"
    monkeypatch.setattr(tavaal.train, "_warned", False)
    monkeypatch.setattr(tavaal.train, "advice_for", "python")
    learner = make_learner(tiny_config(epochs=5), "random", digits, 0)
    learner.label(list(range(20)), oracle_labels(digits, list(range(20))))
    with caplog.at_level(logging.WARNING, logger="tavaal"):
        learner.fit()
        learner.fit()
    warnings = [r.getMessage() for r in caplog.records if "this fit will take about" in r.getMessage()]
    assert len(warnings) == 1 and "preset='quick', fewer epochs (epochs=N)" in warnings[0]
    assert "2 epochs left" in warnings[0]  # projected after three measured epochs of five


def test_the_estimate_is_the_steady_epoch_time_and_the_advice_the_callers(monkeypatch, caplog):
    import logging

    import tavaal.train as train

    monkeypatch.setattr(train, "_warned", False)
    monkeypatch.setattr(train, "advice_for", "cli")
    with caplog.at_level(logging.WARNING, logger="tavaal"):
        train.warn_if_long(elapsed=30.0, steady=0.5, remaining=100, desc="fit")  # 80 s: no warning
        assert not caplog.records
        train.warn_if_long(elapsed=30.0, steady=1.5, remaining=100, desc="fit")  # 180 s
    (msg,) = [r.getMessage() for r in caplog.records]
    assert "about 3 min (1.5 s per epoch, 100 epochs left" in msg and "--preset quick" in msg
