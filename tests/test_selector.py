"""Task channels, region ports, adapter mapping and the connectome selector: published scores, tie-breaks,
metadata, the embedded substrates, bad input and the written files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from connectome_bpu.channels import (
    REGION_PORTS,
    TASK_CHANNELS,
    adapter_mapping,
    channel_task_id,
    task_channels,
)
from connectome_bpu.errors import BPUInputError
from connectome_bpu.model_names import MODEL_NAMES
from connectome_bpu.selector import (
    LIBRARY,
    REAL_LIBRARY,
    ORIGINAL_MODEL_NAMES,
    CandidateScore,
    rank_candidates,
    select_connectome,
    selection_markdown,
    write_selection,
)
from connectome_bpu.tasks import TASK_NAMES, task_spec

REPO = Path(__file__).resolve().parent.parent
MB_POOL_COUNTS = {"internal": 10839, "output": 269, "sensory": 582}   # the prepared hemibrain MB
EMBEDDED = ["synthetic_cx", "synthetic_mb", "synthetic_optic"]


def test_semantic_tag_set_sizes():
    sizes = {task: len(spec.semantic_tags) for task, spec in TASK_CHANNELS.items()}
    assert sizes == {"cartesian": 7, "cx_polar_bump": 8, "cx_landmark_bump": 13, "mb_associative_learning": 9,
                     "optic_flow": 6, "embodied_foraging": 7}


@pytest.mark.parametrize("task", TASK_NAMES)
def test_channel_dims_equal_the_pipeline_task_dims(task):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["task"]["name"] = task
    spec = task_spec(config["task"])
    channels = task_channels(task, heading_bins=config["task"]["heading_bins"])
    assert (channels.input_dim, channels.output_dim) == (spec.input_dim, spec.output_dim)


def test_heading_bins_set_the_bump_width():
    spec = task_channels("cx_landmark_bump", heading_bins=8)
    assert spec.output_channels[0].size == 8 and spec.output_dim == 11
    assert adapter_mapping("cx_polar_bump", "hemibrain_cx", heading_bins=8).output_dim == 11


def test_pipeline_task_name_is_an_alias():
    assert channel_task_id("mb_associative") == "mb_associative_learning"
    assert task_channels("mb_associative") == TASK_CHANNELS["mb_associative_learning"]
    assert select_connectome("mb_associative").task_name == "mb_associative_learning"


def test_channel_spec_dict_form():
    data = TASK_CHANNELS["cartesian"].to_dict()
    assert data["input_dim"] == 2 and data["output_dim"] == 4
    assert data["semantic_tags"] == sorted(set(data["sensory_tags"]) | set(data["target_tags"]))
    assert [c["name"] for c in data["output_channels"]] == ["heading_cos", "heading_sin", "home_x", "home_y"]


# task, selected, total, runner-up, runner-up total, K, dims
PUBLISHED = [
    ("cartesian", "hemibrain_cx", 1.000, "flywire_whole", 0.366, 3, (2, 4)),
    ("cx_polar_bump", "hemibrain_cx", 1.000, "flywire_whole", 0.340, 3, (2, 35)),
    ("cx_landmark_bump", "hemibrain_cx", 0.834, "flywire_whole", 0.271, 3, (6, 35)),
    # FlyWire MB now carries the same 9 tags as its ports, so it ties and loses on the id tie-break.
    ("mb_associative_learning", "hemibrain_mushroom_body", 1.000, "flywire_mushroom_body", 1.000, 3, (67, 1)),
    ("optic_flow", "flywire_optic_lobe", 1.000, "flywire_whole", 0.400, 3, (61, 3)),   # K 3: inside the clip
    ("embodied_foraging", "flywire_whole", 0.691, "hemibrain_cx", 0.326, 3, (2, 2)),
]


@pytest.mark.parametrize("task, selected, total, runner_up, runner_total, k, dims", PUBLISHED)
def test_reference_library_reproduces_published_scores(task, selected, total, runner_up, runner_total, k, dims):
    selection = select_connectome(task, candidates=REAL_LIBRARY)
    first, second = selection.ranking[:2]
    assert selection.selected.connectome == first.candidate.connectome == selected
    assert round(first.total_score, 3) == total
    assert (second.candidate.connectome, round(second.total_score, 3)) == (runner_up, runner_total)
    assert selection.expected_k == k
    assert (selection.mapping.input_dim, selection.mapping.output_dim) == dims
    assert selection.decision_reasons[:2] == (f"selected {selected} for task {task}",
                                              f"top score {total:.3f}; runner-up {runner_total:.3f}")
    assert selection.decision_reasons[2:] == first.reasons
    assert selection.matched_controls == first.candidate.default_controls


def test_partial_scores_of_the_published_table():
    landmark = select_connectome("cx_landmark_bump", candidates=REAL_LIBRARY).ranking[0]
    assert (round(landmark.semantic_score, 3), round(landmark.port_score, 3)) == (0.769, 0.827)
    foraging = select_connectome("embodied_foraging", candidates=REAL_LIBRARY).ranking[0]
    assert (round(foraging.semantic_score, 3), round(foraging.port_score, 3)) == (0.571, 0.679)
    zero_overlap = select_connectome("cartesian", candidates=REAL_LIBRARY).ranking[-1]
    assert round(zero_overlap.total_score, 3) == 0.080 and zero_overlap.reasons[0] == "semantic overlap: none"


def test_allow_list_scales_unavailable_candidates_by_a_quarter():
    selection = select_connectome("optic_flow", candidates=REAL_LIBRARY,
                                  available=["hemibrain_cx", "flywire_whole"])
    scores = {s.candidate.connectome: round(s.total_score, 3) for s in selection.ranking}
    assert selection.selected.connectome == "flywire_whole"
    assert scores == {"flywire_whole": 0.400, "flywire_optic_lobe": 0.230, "hemibrain_cx": 0.080,
                      "hemibrain_mushroom_body": 0.000, "flywire_mushroom_body": 0.000}
    assert selection.ranking[1].availability_score == 0.0


def test_ties_break_on_reverse_alphabetical_id():
    zero = [CandidateScore(candidate, 0.0, 0.0, 0.0, 0.0, 0.0, ()) for candidate in REAL_LIBRARY
            if candidate.connectome != "flywire_whole"]
    order = [s.candidate.connectome for s in rank_candidates(zero)]
    assert order == ["hemibrain_mushroom_body", "hemibrain_cx", "flywire_optic_lobe", "flywire_mushroom_body"]
    tail = select_connectome("cartesian", candidates=REAL_LIBRARY).ranking[2:]
    assert [s.candidate.connectome for s in tail] == ["hemibrain_mushroom_body", "flywire_optic_lobe",
                                                      "flywire_mushroom_body"]


def test_selector_acceptance_checks():
    picks = {task: select_connectome(task, candidates=REAL_LIBRARY).selected.connectome
             for task in ("cx_polar_bump", "mb_associative_learning", "optic_flow")}
    assert picks == {"cx_polar_bump": "hemibrain_cx", "mb_associative_learning": "hemibrain_mushroom_body",
                     "optic_flow": "flywire_optic_lobe"}
    mapping = adapter_mapping("cx_polar_bump", "hemibrain_cx")
    assert mapping.mapping_score > 0.5
    assert set(mapping.input_channel_to_port) == {"forward_velocity", "turn_velocity"}
    assert "heading_bump" in mapping.output_channel_to_port
    assert "Candidate Ranking" in selection_markdown(select_connectome("cx_polar_bump"))


def test_mapping_reasons_and_ports():
    mapping = adapter_mapping("cx_polar_bump", "hemibrain_cx")
    assert mapping.reasons == ("semantic overlap: angular_velocity, heading, home_vector, locomotion, navigation, "
                               "path_integration, ring_attractor, self_motion",
                               "sensory tags match region ports", "target tags match region ports")
    assert set(mapping.input_channel_to_port.values()) == set(REGION_PORTS["hemibrain_cx"].sensory_ports)
    assert set(mapping.output_channel_to_port.values()) == set(REGION_PORTS["hemibrain_cx"].output_ports)
    cx_for_optic = adapter_mapping("optic_flow", "hemibrain_cx")
    assert cx_for_optic.mapping_score == 0.0
    assert cx_for_optic.reasons[1:] == ("sensory tags do not match region ports",
                                        "target tags do not match region ports")


def test_mb_pool_counts_add_a_reason_and_stay_capped():
    mapping = adapter_mapping("mb_associative", "hemibrain_mushroom_body", pool_counts=MB_POOL_COUNTS)
    assert mapping.mapping_score == 1.0
    assert mapping.reasons[-1] == "pool counts: internal=10839, output=269, sensory=582"
    landmark = adapter_mapping("cx_landmark_bump", "hemibrain_cx", pool_counts={"sensory": 5, "output": 0})
    assert round(landmark.mapping_score, 3) == round(adapter_mapping("cx_landmark_bump", "hemibrain_cx")
                                                     .mapping_score + 0.05, 3)


def test_metadata_sets_k_and_adds_the_pool_bonus():
    metadata = {"hemibrain_cx": {"connectome": "hemibrain_cx", "N": 7349, "estimated_K": 5,
                                 "pool_counts": {"internal": 6000, "output": 400, "sensory": 900}}}
    plain = select_connectome("cx_landmark_bump", candidates=REAL_LIBRARY)
    selection = select_connectome("cx_landmark_bump", candidates=REAL_LIBRARY, metadata=metadata)
    assert selection.expected_k == 5 and plain.expected_k == 3
    best = selection.ranking[0]
    assert round(best.port_score, 3) == round(plain.ranking[0].port_score + 0.10, 3) == 0.927
    assert round(best.total_score - plain.ranking[0].total_score, 3) == 0.032
    assert best.reasons[-1] == "prepared graph metadata available: N=7349, K=5"
    assert selection.decision_reasons[-1] == best.reasons[-1]
    assert selection.mapping.reasons[-1] == "pool counts: internal=6000, output=400, sensory=900"
    assert all(len(s.reasons) == 3 for s in selection.ranking[1:])   # metadata of one connectome only


@pytest.mark.parametrize("task, expected", [("cx_polar_bump", "synthetic_cx"), ("cx_landmark_bump", "synthetic_cx"),
                                            ("mb_associative", "synthetic_mb"), ("optic_flow", "synthetic_optic")])
def test_embedded_substrates_when_only_they_are_available(task, expected):
    selection = select_connectome(task, available=EMBEDDED)
    assert selection.selected.connectome == expected
    assert selection.selected.source == "embedded synthetic generator (this project)"
    assert selection.ranking[0].evidence_score == 0.0


@pytest.mark.parametrize("task, expected", [("cx_polar_bump", "hemibrain_cx"), ("cx_landmark_bump", "hemibrain_cx"),
                                            ("mb_associative", "hemibrain_mushroom_body"),
                                            ("optic_flow", "flywire_optic_lobe")])
def test_full_library_prefers_connectomes_with_prior_results(task, expected):
    assert select_connectome(task).selected.connectome == expected


def test_library_contents():
    assert [c.connectome for c in LIBRARY] == [c.connectome for c in REAL_LIBRARY] + EMBEDDED
    by_id = {c.connectome: c for c in LIBRARY}
    for candidate in LIBRARY:   # one tag list per substrate
        assert candidate.task_tags == REGION_PORTS[candidate.connectome].supported_tags
        assert candidate.region_name == REGION_PORTS[candidate.connectome].region_name
        assert candidate.default_k == 3
    assert len(by_id["flywire_mushroom_body"].task_tags) == 9
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert list(by_id["flywire_optic_lobe"].primary_rois) == config["flywire"]["optic_lobe"]["neuropils"]
    assert by_id["synthetic_cx"].primary_rois == ("EB", "PB", "FB", "NO")
    assert by_id["synthetic_mb"].primary_rois == ("CA", "PED", "VL", "ML")
    assert by_id["synthetic_optic"].primary_rois == ("LA", "ME", "LOP")
    for embedded, real in [("synthetic_cx", "hemibrain_cx"), ("synthetic_mb", "hemibrain_mushroom_body"),
                           ("synthetic_optic", "flywire_optic_lobe")]:
        assert by_id[embedded].evidence_tags == ()
        assert by_id[embedded].default_controls == by_id[real].default_controls
        assert by_id[embedded].train_recurrent_modes == by_id[real].train_recurrent_modes
        ports, real_ports = REGION_PORTS[embedded], REGION_PORTS[real]
        assert (ports.sensory_ports, ports.output_ports, ports.supported_tags) == \
            (real_ports.sensory_ports, real_ports.output_ports, real_ports.supported_tags)


def test_default_controls_are_model_names():
    for candidate in LIBRARY:
        assert set(candidate.default_controls) <= set(MODEL_NAMES), candidate.connectome
    by_id = {c.connectome: c for c in LIBRARY}
    for connectome, renamed in ORIGINAL_MODEL_NAMES.items():
        assert set(renamed) <= set(by_id[connectome].default_controls)
    assert "connectome_bpu (originally hemibrain_seeded)" in selection_markdown(select_connectome("mb_associative"))


def test_single_candidate_has_no_runner_up():
    selection = select_connectome("optic_flow", candidates=LIBRARY[3:4])
    assert selection.decision_reasons[1] == "top score 1.000"


def _mb_metadata(**changes):
    meta = {"connectome": "hemibrain_mushroom_body", "N": 11690, "estimated_K": 4,
            "pool_counts": dict(MB_POOL_COUNTS)}
    meta.update(changes)
    return {"hemibrain_mushroom_body": meta}


@pytest.mark.parametrize("kwargs, task, message", [
    ({}, "navigation", "unknown task 'navigation'"),
    ({"available": ["hemibrain_cx", "larva_cns"]}, "cx_polar_bump", "unknown connectome(s) larva_cns"),
    ({"available": ["synthetic_cx"], "candidates": REAL_LIBRARY}, "cx_polar_bump", "excludes every candidate"),
    ({"available": []}, "cx_polar_bump", "excludes every candidate"),
    ({"metadata": {"larva_cns": {"N": 3}}}, "cx_polar_bump", "metadata names unknown connectome(s) larva_cns"),
    ({"metadata": _mb_metadata(pool_counts=[1, 2])}, "mb_associative", "pool_counts is [1, 2]"),
    ({"metadata": _mb_metadata(pool_counts={"output": -1})}, "mb_associative", "integer >= 0"),
    ({"metadata": _mb_metadata(pool_counts={"output": 2.5})}, "mb_associative", "integer >= 0"),
    ({"metadata": _mb_metadata(estimated_K=3.5)}, "mb_associative", "estimated_K is 3.5"),
    ({"metadata": _mb_metadata(estimated_K=True)}, "mb_associative", "estimated_K is True"),
    ({"metadata": _mb_metadata(connectome="hemibrain_cx")}, "mb_associative", "says connectome 'hemibrain_cx'"),
    ({"metadata": {"hemibrain_cx": 7}}, "cx_polar_bump", "expected a mapping"),
    ({"candidates": []}, "cx_polar_bump", "no candidate connectomes"),
    ({"heading_bins": 0}, "cx_polar_bump", "heading_bins is 0"),
])
def test_bad_input_is_named(kwargs, task, message):
    with pytest.raises(BPUInputError) as error:
        select_connectome(task, **kwargs)
    assert message in str(error.value)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(BPUInputError) as error:
        adapter_mapping("cx_polar_bump", "larva_cns")
    assert "'larva_cns'" in str(error.value) and "synthetic_optic" in str(error.value)
    with pytest.raises(BPUInputError) as error:
        task_channels("navigation")
    assert "embodied_foraging" in str(error.value) and "mb_associative" in str(error.value)
    with pytest.raises(BPUInputError, match="pool_counts"):
        adapter_mapping("mb_associative", "hemibrain_mushroom_body", pool_counts={"sensory": "many"})


def test_selection_json_round_trip():
    selection = select_connectome("mb_associative", metadata=_mb_metadata())
    data = selection.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"task_name", "selected", "mapping", "expected_k", "matched_controls",
                         "train_recurrent_modes", "ranking", "decision_reasons"}
    assert set(data["ranking"][0]) == {"candidate", "total_score", "semantic_score", "port_score",
                                       "evidence_score", "availability_score", "reasons"}
    assert data["expected_k"] == 4 and len(data["ranking"]) == len(LIBRARY)


def test_markdown_sections():
    text = selection_markdown(select_connectome("cx_polar_bump", candidates=REAL_LIBRARY))
    for heading in ("# Connectome Selection: cx_polar_bump", "## Decision Reasons", "## Adapter Mapping",
                    "### Input Channels", "### Output Channels", "## Candidate Ranking"):
        assert heading in text
    assert "- forward_velocity -> ring/ExR/LNO/LCNO/GLNO/SpsP sensory-biased pool" in text
    assert "| 1 | hemibrain_cx | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |" in text
    assert "| 2 | flywire_whole | 0.340 |" in text


def test_write_selection_leaves_only_the_two_files(tmp_path):
    selection = select_connectome("optic_flow")
    json_path, md_path = tmp_path / "selectors" / "optic_flow.json", tmp_path / "selectors" / "optic_flow.md"
    write_selection(selection, json_path, md_path)
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["optic_flow.json", "optic_flow.md"]
    text = json_path.read_text()
    assert json.loads(text) == selection.to_dict()
    assert text == json.dumps(selection.to_dict(), indent=2, sort_keys=True) + "\n"
    assert md_path.read_text() == selection_markdown(selection)
