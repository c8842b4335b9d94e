"""The Pythia 8 + FastJet backend of ``spanet-generate``: showered events in the fast backend's layout.

Each process is generated once per session with about 200 Pythia events (a handful to a few
dozen selected events). Tests that need Pythia are skipped, with the reason shown by ``-ra``,
when the optional extra ``pythia`` (``pythia8mc``, ``fastjet``) is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import needs
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.config.event_file import parse_event_spec
from spanet_lite.errors import InputError
from spanet_lite.physics.generator import PROCESSES as FAST
from spanet_lite.physics.kinematics import delta_r
from spanet_lite.physics.pythia.matching import greedy_match

needs_pythia = needs("pythia8mc", "fastjet", "awkward", extra="pythia")

# Selected events per process: each takes about 200 Pythia events at that process's acceptance.
EVENTS = {"ttbar_allhad": 40, "ttbar_semilep": 20, "ttH_semilep": 6, "hh_4b": 60}
SEED = 11


def _read(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def keep(key: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            out[key] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(keep)
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small file per process; all-hadronic ttbar in two chunks, to exercise the assembly."""
    from spanet_lite.physics.pythia import generate

    root = tmp_path_factory.mktemp("pythia")
    files = {}
    for name, n in EVENTS.items():
        files[name] = root / f"{name}.h5"
        generate(name, n, SEED, files[name], progress=False, chunk_size=20 if name == "ttbar_allhad" else 500)
    return files


# ----------------------------------------------------------------------------- pure functions


def test_greedy_matching_takes_the_closest_pair_first() -> None:
    # Parton 0 is 0.30 from jet 0 and 0.05 from jet 1; parton 1 is 0.08 from jet 1 and 0.43
    # from jet 0. The closest pair (p0, j1) goes first, so p1 loses its only jet within 0.4
    # (even though p1 is closer to j1 than p0 is to j0).
    parton_eta = np.array([[0.0, 0.13]])
    jet_eta = np.array([[-0.30, 0.05]])
    zeros = np.zeros((1, 2))
    match = greedy_match(parton_eta, zeros, np.ones((1, 2), bool), jet_eta, zeros, np.ones((1, 2), bool))
    assert match.tolist() == [[1, -1]]


def test_greedy_matching_respects_the_radius_and_masks() -> None:
    parton_eta = np.array([[0.0, 1.0, 2.0]])
    jet_eta = np.array([[0.39, 1.41, 2.0]])
    zeros = np.zeros((1, 3))
    valid = np.ones((1, 3), bool)
    jets_valid = np.array([[True, True, False]])
    match = greedy_match(parton_eta, zeros, valid, jet_eta, zeros, jets_valid, max_dr=0.4)
    assert match.tolist() == [[0, -1, -1]]  # 0.41 is outside; jet 2 is padding


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(0, 8))
def test_greedy_matching_is_unique_and_within_the_radius(seed: int, partons: int, jets: int) -> None:
    rng = np.random.default_rng(seed)
    pe, pp = rng.uniform(-1, 1, (3, partons)), rng.uniform(-1, 1, (3, partons))
    je, jp = rng.uniform(-1, 1, (3, jets)), rng.uniform(-1, 1, (3, jets))
    pv, jv = rng.random((3, partons)) < 0.8, rng.random((3, jets)) < 0.8
    match = greedy_match(pe, pp, pv, je, jp, jv, max_dr=0.6)
    for ev in range(3):
        used = match[ev][match[ev] >= 0]
        assert len(set(used.tolist())) == len(used)
        for i, j in enumerate(match[ev]):
            if j >= 0:
                assert pv[ev, i] and jv[ev, j]
                assert delta_r(pe[ev, i], pp[ev, i], je[ev, j], jp[ev, j]) < 0.6


def test_missing_extra_is_one_line_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from spanet_lite.physics.pythia import require_pythia

    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # makes `import pythia8mc` fail
    with pytest.raises(InputError) as error:
        require_pythia()
    assert str(error.value) == ("Pythia backend: expected the optional 'pythia' extra "
                                "(pip install 'spanet-lite[pythia]'), got no module 'pythia8mc'")


# ----------------------------------------------------------------------------- Pythia runs


@needs_pythia
def test_truth_partons_rebuild_the_top_and_w_masses() -> None:
    from spanet_lite.physics.pythia.engine import make_pythia
    from spanet_lite.physics.pythia.processes import PROCESSES
    from spanet_lite.physics.pythia.record import extract_truth

    source = make_pythia(PROCESSES["ttbar_allhad"].components[0], 4321)
    truth = extract_truth(source.next_batch(20), "ttbar_allhad")
    assert np.isfinite(truth.p4).all()

    def mass(*slots: str) -> np.ndarray:
        p = sum(truth.p4[:, truth.index(s)] for s in slots)
        return np.sqrt(p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(axis=1))

    for top in ("t1", "t2"):
        # The decay partons before showering carry the W and top Breit-Wigner masses.
        assert np.median(np.abs(mass(f"{top}.q1", f"{top}.q2") - 80.4)) < 3.0
        assert np.median(np.abs(mass(f"{top}.b", f"{top}.q1", f"{top}.q2") - 172.5)) < 3.0
    assert (np.abs(truth.pid[:, truth.index("t1.b")]) == 5).all()


@needs_pythia
def test_semileptonic_events_have_exactly_one_leptonic_w_of_either_charge() -> None:
    from spanet_lite.physics.pythia.engine import make_pythia
    from spanet_lite.physics.pythia.processes import PROCESSES
    from spanet_lite.physics.pythia.record import extract_truth

    source = make_pythia(PROCESSES["ttbar_semilep"].components[0], 99)
    for _ in range(2):  # the hook must keep working batch after batch
        truth = extract_truth(source.next_batch(25), "ttbar_semilep")
        lepton = truth.pid[:, truth.index("lt.l")]
        quark = truth.pid[:, truth.index("ht.q1")]
        assert np.isin(np.abs(lepton), (11, 13)).all()
        assert ((np.abs(quark) >= 1) & (np.abs(quark) <= 4)).all()
    assert (lepton > 0).any() and (lepton < 0).any()  # W- and W+ both decay leptonically


@needs_pythia
@pytest.mark.parametrize("process", list(EVENTS))
def test_generated_file_validates_against_its_event_file(generated: dict[str, Path], process: str) -> None:
    from spanet_lite.dataset.schema import validate_file

    spec = parse_event_spec(FAST[process].event_file_text)
    report = validate_file(generated[process], spec)
    assert report.ok, [p.message for p in report.errors]
    assert report.num_events == EVENTS[process]
    with h5py.File(generated[process], "r") as f:
        assert f.attrs["backend"] == "pythia"
        assert f.attrs["candidates"] >= EVENTS[process]


@needs_pythia
@pytest.mark.parametrize("process", list(EVENTS))
def test_selection_and_objects_follow_the_documented_cuts(generated: dict[str, Path], process: str) -> None:
    fast = FAST[process]
    data = _read(generated[process])
    source = f"INPUTS/{fast.sequential_input}"
    mask = data[f"{source}/MASK"]
    jets = mask.copy()
    if fast.has_lepton:
        assert mask[:, 0].all()  # slot 0: the one lepton
        flags = data[f"{source}/etag"][:, 0] + data[f"{source}/utag"][:, 0]
        assert (flags == 1).all()
        assert (data[f"{source}/pt"][:, 0] > 25.0).all()
        jets[:, 0] = False
    pt, eta = data[f"{source}/pt"], data[f"{source}/eta"]
    assert (pt[jets] > 25.0).all() and (np.abs(eta[jets]) < 2.5).all()
    first_jet = 1 if fast.has_lepton else 0
    jet_pt, jet_mask = pt[:, first_jet:], jets[:, first_jet:]
    assert (np.diff(np.where(jet_mask, jet_pt, 0.0), axis=1)[jet_mask[:, 1:]] <= 0).all()  # by pT
    assert (jets.sum(axis=1) >= fast.selection.min_jets).all()
    assert ((data[f"{source}/btag"] * jets).sum(axis=1) >= fast.selection.min_btags).all()
    assert (np.diff(mask.astype(int), axis=1) <= 0).all()  # real objects first, then padding


@needs_pythia
@pytest.mark.parametrize("process", list(EVENTS))
def test_targets_are_unique_real_jets(generated: dict[str, Path], process: str) -> None:
    fast = FAST[process]
    data = _read(generated[process])
    mask = data[f"INPUTS/{fast.sequential_input}/MASK"]
    targets = np.stack([data[f"TARGETS/{p}/{q}"] for p, q in fast.targets], axis=1)
    rows = np.arange(len(targets))
    for ev in rows:
        used = targets[ev][targets[ev] >= 0]
        assert len(set(used.tolist())) == len(used)
        assert mask[ev, used].all()
        if fast.has_lepton:
            assert 0 not in used  # the lepton is never a jet target
    signal = data.get("CLASSIFICATIONS/EVENT/signal")
    if signal is not None:
        assert set(np.unique(signal)) <= {0, 1}
        higgs = [r for r, (p, _) in enumerate(fast.targets) if p == "h"]
        assert (targets[signal == 0][:, higgs] == -1).all()  # background: tops only, no Higgs
    # Showered jets still find most decay partons.
    matched = (targets >= 0)[signal == 1] if signal is not None else targets >= 0
    assert matched.mean() > 0.5


@needs_pythia
def test_semileptonic_regressions_are_the_true_neutrino(generated: dict[str, Path]) -> None:
    data = _read(generated["ttH_semilep"])
    px, py, pz = (data[f"REGRESSIONS/EVENT/neutrino_{c}"] for c in ("px", "py", "pz"))
    eta = data["REGRESSIONS/EVENT/neutrino_eta"]
    assert np.isfinite(px).all() and np.allclose(eta, np.arcsinh(pz / np.hypot(px, py)), atol=1e-4)
    # m(t tbar X) is above the two tops' masses.
    assert (np.exp(data["REGRESSIONS/EVENT/log_invariant_mass"]) > 2 * 160.0).all()
    # MET is the visible imbalance: the neutrino dominates it in most events.
    met = data["INPUTS/Met/met"]
    assert np.median(np.abs(met - np.hypot(px, py))) < 0.5 * np.median(met)


def _small_run(output: Path, **kwargs: object) -> None:
    """10 all-hadronic ttbar events in two chunks of 5 (about 50 Pythia events)."""
    from spanet_lite.physics.pythia import generate

    generate("ttbar_allhad", 10, SEED, output, progress=False, chunk_size=5, **kwargs)  # type: ignore[arg-type]


@needs_pythia
def test_same_seed_same_file_for_any_number_of_jobs(tmp_path: Path) -> None:
    _small_run(tmp_path / "one.h5", jobs=1)
    _small_run(tmp_path / "two.h5", jobs=2)
    first, second = _read(tmp_path / "one.h5"), _read(tmp_path / "two.h5")
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


@needs_pythia
def test_an_interrupted_run_resumes_from_its_finished_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spanet_lite.physics.pythia import runner

    output = tmp_path / "resumed.h5"

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(runner, "_assemble", killed)  # "killed" after both chunks were written
        with pytest.raises(KeyboardInterrupt):
            _small_run(output)
    work = runner.work_dir_for(output)
    assert not output.exists()
    assert sorted(p.name for p in work.glob("chunk_*.h5")) == ["chunk_00000.h5", "chunk_00001.h5"]
    chunks = [_read(runner.chunk_path(work, k)) for k in (0, 1)]
    runner.chunk_path(work, 1).unlink()  # as if killed during the second chunk

    selected: list[int] = []
    _small_run(output, on_progress=lambda generated, kept: selected.append(kept))
    assert sum(selected) == 5  # only the missing chunk was generated again
    assert not work.exists()
    resumed = _read(output)
    for key, values in resumed.items():
        if key != "WEIGHTS/EVENT/weight":
            np.testing.assert_array_equal(values, np.concatenate([c[key] for c in chunks]), err_msg=key)


@needs_pythia
def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    from spanet_lite.physics.pythia import runner

    output = tmp_path / "x.h5"
    work = runner.work_dir_for(output)
    work.mkdir()
    (work / runner.MANIFEST).write_text('{"process": "hh_4b", "seed": 1}')
    with pytest.raises(InputError, match="remove"):
        runner.generate("ttbar_allhad", 5, SEED, output, progress=False)


def test_resuming_with_another_seed_names_what_differs_not_the_whole_manifest(tmp_path: Path) -> None:
    """The refusal used to print both manifests whole, each with the repr of every physics
    parameter (thousands of characters), so the one setting that changed was hard to find."""
    from spanet_lite.physics.generator import PhysicsConfig
    from spanet_lite.physics.pythia import runner

    work = tmp_path / "x.h5.chunks"
    options = repr(PhysicsConfig())
    before = {"backend": "pythia", "process": "ttbar_allhad", "seed": 1, "events": 1000, "options": options}
    runner._check_manifest(work, before)  # writes it
    with pytest.raises(InputError) as refused:
        runner._check_manifest(work, {**before, "seed": 2})
    message = str(refused.value)
    assert "seed 1 (this run: 2)" in message and f"remove {work}" in message
    assert "PhysicsConfig" not in message and len(message) < 400
    with pytest.raises(InputError, match="--set, --min-jets"):
        runner._check_manifest(work, {**before, "options": repr(PhysicsConfig(met_resolution=0.0))})


# ----------------------------------------------------------------------------- command line


def test_cli_without_the_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spanet_lite.cli.generate import main

    monkeypatch.setitem(sys.modules, "pythia8mc", None)
    code = main(["ttbar_allhad", "--backend", "pythia", "-n", "5", "-o", str(tmp_path / "x.h5"), "--quiet"])
    assert code == 2
    assert capsys.readouterr().err == ("spanet-generate: error: --backend pythia: expected the optional "
                                       "'pythia' extra (pip install 'spanet-lite[pythia]'), got no module "
                                       "'pythia8mc'\n")
    assert not (tmp_path / "x.h5").exists()


@needs_pythia
def test_cli_backend_pythia_writes_a_valid_file(tmp_path: Path) -> None:
    from spanet_lite.cli.generate import main
    from spanet_lite.dataset.schema import validate_file

    output = tmp_path / "hh.h5"
    code = main(["hh_4b", "--backend", "pythia", "--jobs", "1", "-n", "8", "--seed", "2", "-o", str(output),
                 "--quiet"])
    assert code == 0
    report = validate_file(output, parse_event_spec(FAST["hh_4b"].event_file_text))
    assert report.ok and report.num_events == 8


@needs_pythia
def test_an_impossible_selection_stops_with_one_line_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pythia simulates ~10^2 candidates a second, so its guard trips sooner than the fast one's
    (lowered further here to keep the test short)."""
    from spanet_lite.physics.generator.config import Selection
    from spanet_lite.physics.pythia import generate, runner

    monkeypatch.setattr(runner, "PYTHIA_EMPTY_AFTER", 30)
    output = tmp_path / "never.h5"
    with pytest.raises(InputError, match=r"^selection: .*at least 20 jets and 0 b-tags here.*none accepted"):
        generate("ttbar_allhad", 5, SEED, output, progress=False,
                 selection=Selection(min_jets=20, min_btags=0), max_objects=20)
    assert list(tmp_path.iterdir()) == []  # no output, no chunk folder left to resume from


def test_values_no_run_can_use_are_refused_as_the_fast_backend_refuses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check as the fast backend's, before Pythia is needed (here: not installed)."""
    from spanet_lite.physics.pythia import generate

    monkeypatch.setitem(sys.modules, "pythia8mc", None)
    output = tmp_path / "x.h5"
    with pytest.raises(InputError, match=r"^seed: expected a seed >= 0, got -1$"):
        generate("ttH_semilep", 10, -1, output, progress=False)
    with pytest.raises(InputError, match=r"^n_events: expected a positive number of events, got 0$"):
        generate("ttH_semilep", 0, 1, output, progress=False)
    with pytest.raises(InputError) as error:
        generate("ttH_semilep", 10, 1, output, progress=False, signal_fraction=2.0)
    assert str(error.value) == "signal_fraction: expected a fraction between 0 and 1, got 2.0"
    assert list(tmp_path.iterdir()) == []


@needs_pythia
def test_an_existing_output_is_refused_naming_the_keyword(tmp_path: Path) -> None:
    from spanet_lite.physics.pythia import generate

    kept = tmp_path / "kept.h5"
    kept.write_bytes(b"mine")
    with pytest.raises(InputError) as error:
        generate("hh_4b", 10, 1, kept, progress=False)
    assert str(error.value) == (f"{kept}: output: expected a path that does not exist yet (pass --overwrite, "
                                "from Python overwrite=True, to replace it), got an existing file")
    assert kept.read_bytes() == b"mine"


def test_input_errors_survive_pickling_so_worker_processes_can_report_them() -> None:
    import pickle

    error = InputError("events.h5", "--min-jets", "a possible selection", "none accepted")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


@needs_pythia
def test_from_python_no_progress_bar_is_drawn_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A notebook's generate(...) drew a progress bar on stderr by default, where every other
    function of the Python API (write_file, predict, evaluate, validate_file) draws none unless
    asked with progress=True."""
    from spanet_lite.physics.pythia import generate

    generate("ttbar_allhad", 5, SEED, tmp_path / "quiet.h5", chunk_size=5)
    assert capsys.readouterr().err == ""
