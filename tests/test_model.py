"""Finding, downloading and checking the model. Downloads go to a server on 127.0.0.1 serving the real file."""

import functools
import hashlib
import http.server
import threading

import pytest

from conftest import MODEL, run_vbg
from vbg.errors import VbgError
from vbg.matting.segment import Segmenter
from vbg.model import ModelSpec, download_model, resolve_model



@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "model.onnx").write_bytes(MODEL.read_bytes())
    (root / "other.onnx").write_bytes(b"not the model" * 100)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.integration
def test_manifest_matches_the_shared_model():
    spec = ModelSpec.load()
    assert hashlib.sha256(MODEL.read_bytes()).hexdigest() == spec.sha256
    assert MODEL.stat().st_size == spec.size
    assert (spec.width, spec.height) == (256, 144)


@pytest.mark.integration
def test_resolution_order(tmp_path, monkeypatch):
    spec = ModelSpec.load()
    other = tmp_path / "mine.onnx"
    other.write_bytes(MODEL.read_bytes())
    assert resolve_model(spec, other) == other                    # --model wins
    monkeypatch.setenv("VBG_MODEL", str(MODEL))
    assert resolve_model(spec, None) == MODEL                     # then the environment
    monkeypatch.delenv("VBG_MODEL")
    cached = spec.cached_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(MODEL.read_bytes())
    assert resolve_model(spec, None, download=False) == cached   # then the cache


@pytest.mark.integration
def test_download_checks_sha256_and_reports_progress(server):
    spec = ModelSpec.load()
    seen = []
    path = download_model(spec, spec.cached_path(), url=f"{server}/model.onnx", progress=lambda d, t: seen.append(d))
    assert path.read_bytes() == MODEL.read_bytes()
    assert seen[-1] == spec.size and len(seen) > 1


@pytest.mark.integration
def test_download_with_wrong_hash_is_refused_and_not_kept(server):
    spec = ModelSpec.load()
    with pytest.raises(VbgError, match="sha256"):
        download_model(spec, spec.cached_path(), url=f"{server}/other.onnx", progress=lambda d, t: None)
    assert not spec.cached_path().exists()
    assert not list(spec.cached_path().parent.glob("*.part"))


def test_offline_download_says_where_to_put_the_file():
    spec = ModelSpec.load()
    with pytest.raises(VbgError) as err:
        download_model(spec, spec.cached_path(), url="http://127.0.0.1:9/model.onnx", progress=lambda d, t: None)
    message = str(err.value)
    assert str(spec.cached_path()) in message and "--model" in message and "\n" not in message


@pytest.mark.parametrize("url, words", [("http://model.invalid/m.onnx", "no network (cannot look up model.invalid)"),
                                        ("http://127.0.0.1:9/m.onnx", "127.0.0.1 refused the connection")])
def test_offline_first_run_says_what_is_wrong_in_words(url, words):
    with pytest.raises(VbgError) as err:   # .invalid never resolves (RFC 2606), like a machine offline
        download_model(ModelSpec.load(), ModelSpec.load().cached_path(), url=url, progress=lambda d, t: None)
    assert words in str(err.value) and "Errno" not in str(err.value)


@pytest.mark.integration
def test_damaged_cache_file_is_refused(monkeypatch):
    monkeypatch.delenv("VBG_MODEL")
    spec = ModelSpec.load()
    spec.cached_path().parent.mkdir(parents=True)
    spec.cached_path().write_bytes(MODEL.read_bytes()[:-10])
    with pytest.raises(VbgError, match="wrong sha256"):
        resolve_model(spec, None)


def test_non_onnx_file_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("hello")
    with pytest.raises(VbgError) as err:
        Segmenter(bad, ModelSpec.load(), "cpu")
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_model_with_wrong_shapes_is_refused(tmp_path):
    import onnx  # dev extra: builds a small, valid ONNX file with the wrong interface
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 64])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "identity.onnx"
    onnx.save(model, str(path))
    with pytest.raises(VbgError, match="not the PP-HumanSeg"):
        Segmenter(path, ModelSpec.load(), "cpu")


@pytest.mark.integration
def test_cli_bad_model_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x00" * 1000)
    r = run_vbg("render", MODEL.parent.parent / "data" / "stills" / "images" / "001.jpg", "-o", tmp_path / "o.png",
                "--model", bad)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and str(bad) in r.stderr


def test_models_come_from_one_registry_and_unknown_names_say_what_exists():
    from vbg.models import MODELS, load_model
    from vbg.models.pphumanseg import PPHumanSegV2

    model = load_model()
    assert isinstance(model, PPHumanSegV2) and model.spec.name == PPHumanSegV2.name in MODELS


def test_models_are_chosen_by_name_or_by_file():
    from vbg.models import choose_model, load_model, names

    assert "pphumanseg" in names()
    model, path = choose_model("pphumanseg")
    assert path is None and model.spec.name == "pphumanseg_v2_portrait_lite_256x144"
    assert choose_model("pphumanseg_v2_portrait_lite_256x144")[1] is None
    model, path = choose_model("/somewhere/my.onnx")             # a file: the default model's interface
    assert path == "/somewhere/my.onnx" and model.name == "pphumanseg_v2_portrait_lite_256x144"
    assert choose_model(None)[1] is None
    with pytest.raises(VbgError, match="unknown model 'nope': vbg knows pphumanseg"):
        load_model("nope")
