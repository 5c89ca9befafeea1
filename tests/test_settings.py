"""Settings files: sections follow the stages, and files written by vbg 0.1 keep their choices."""

import json

from vbg.settings import Settings


def test_a_01_settings_file_keeps_background_mirror_and_edge_choices(tmp_path):
    old = {"smooth": {"strength": 0.5}, "matte": {"refine": False, "radius": 3},
           "output": {"background": "color:#112233", "mirror": True, "vcam": False}}
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(old))
    s = Settings.load(path)
    assert (s.composite.background, s.composite.mirror, s.composite.refine, s.composite.radius) == \
        ("color:#112233", True, False, 3)
    assert s.output.vcam is False and s.smooth.strength == 0.5
    s.save(path)
    again = json.loads(path.read_text())
    assert "matte" not in again and "background" not in again["output"]
    assert again["composite"]["background"] == "color:#112233"
