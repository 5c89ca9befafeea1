"""Settings files: sections follow the stages, and files written by vbg 0.1 keep their choices."""

import json

from vbg.settings import Settings, edge_preset


def test_a_01_settings_file_keeps_background_mirror_and_edge_choices(tmp_path):
    old = {"smooth": {"strength": 0.5}, "matte": {"refine": False, "radius": 3},
           "output": {"background": "color:#112233", "mirror": True, "vcam": False}}
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(old))
    s = Settings.load(path)
    assert (s.composite.background, s.composite.mirror, s.refine.enabled, s.refine.radius) == \
        ("color:#112233", True, False, 3)
    assert s.output.vcam is False and s.smooth.strength == 0.5
    s.save(path)
    again = json.loads(path.read_text())
    assert "matte" not in again and "background" not in again["output"]
    assert again["composite"]["background"] == "color:#112233"


def test_a_named_edge_gets_the_presets_current_numbers(tmp_path):
    """A file saved with an older fine edge (eps 1e-3, no contrast) runs today's fine edge;
    the standard edge's numbers, which did not change, stay; a 0.1 file (no edge named) keeps its own."""
    path = tmp_path / "settings.json"
    fine = Settings()
    fine.refine = edge_preset(fine.refine, "fine")
    saved = json.loads(fine.to_json())
    saved["refine"]["eps"] = 0.001
    del saved["refine"]["mask_contrast"]
    path.write_text(json.dumps(saved))
    s = Settings.load(path)
    assert (s.refine.edge, s.refine.eps, s.refine.mask_contrast, s.refine.color_guide) == \
        ("fine", 1e-4, 2.0, True)
    saved["refine"].update(edge="standard", color_guide=False, radius=3, mask_gamma=0.8)
    path.write_text(json.dumps(saved))
    s = Settings.load(path)
    assert (s.refine.eps, s.refine.mask_contrast, s.refine.color_guide) == (0.001, 1.0, False)
    path.write_text(json.dumps({"matte": {"radius": 5, "eps": 0.002}}))
    s = Settings.load(path)
    assert (s.refine.radius, s.refine.eps) == (5, 0.002)


def test_a_file_with_the_edge_filed_under_composite_keeps_it():
    """The edge's settings were once a part of the composite section; they are the refine stage's now."""
    s = Settings.from_dict({"composite": {"background": "blur:40", "refine": False, "edge": "standard",
                                          "feather": 2, "erode": 1}})
    assert s.composite.background == "blur:40"
    assert (s.refine.enabled, s.refine.edge, s.refine.feather, s.refine.erode) == (False, "standard", 2, 1)
    saved = json.loads(s.to_json())
    assert set(saved["composite"]) == {"background", "mirror"} and saved["refine"]["feather"] == 2


def test_measured_tuning_is_not_frozen_by_a_settings_file(tmp_path):
    """The edge hold's numbers are set by measurement, not in the window: a file from a version whose
    hold let 10 levels pass as still runs today's hold, and a saved file does not hold them at all."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"smooth": {"strength": 0.7, "edge_hold": 0.9, "edge_motion_levels": 10}}))
    s = Settings.load(path)
    assert (s.smooth.strength, s.refine.edge_hold, s.refine.edge_motion_levels) == \
        (0.7, Settings().refine.edge_hold, Settings().refine.edge_motion_levels)
    s.save(path)
    assert json.loads(path.read_text())["smooth"] == {"strength": 0.7}
    assert Settings.load(path).smooth == s.smooth
