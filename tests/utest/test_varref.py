"""The variables reference explains every variable a target file defines."""

from __future__ import annotations

from xnai_qa import varref


def test_every_variable_of_every_target_file_has_a_description(monkeypatch):
    names = set()
    for label, path in varref.TARGET_FILES.items():
        names |= set(varref.load_target(path, label.split("(")[1].rstrip(")")))
    monkeypatch.delenv("XNAI_PROFILE", raising=False)
    missing = sorted(names - set(varref.DESCRIPTIONS))
    assert not missing, f"add these to xnai_qa.varref.DESCRIPTIONS: {missing}"


def test_the_reference_shows_secrets_as_secret_and_names_readers(tmp_path):
    html = varref.render({"t": {"REDIS_PASSWORD": type("Secret", (), {"value": "s3cret"})(), "GATEWAY_URL": "http://x"}})
    assert "s3cret" not in html and "&lt;secret&gt;" in html
    assert "01__kg1_service_integration.robot" in html or "xnai.resource" in html
