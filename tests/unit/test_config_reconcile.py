"""The [reconcile] section: sources of bills, each mistake named by its key."""

from __future__ import annotations

from typing import Any

import pytest

from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.reconcile import Owner, ReconcileConfig, ReconcileSource, admin_key, parse_reconcile
from breakeven.collector.config.settings import load_settings

OPENAI = {"name": "oa", "kind": "openai", "admin_key_env": "OPENAI_ADMIN_KEY"}
FOCUS = {"name": "aws", "kind": "focus", "path": "/bills/*.parquet"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, ReconcileConfig()),
        (
            {"sources": [OPENAI]},
            ReconcileConfig((ReconcileSource("oa", "openai", "OPENAI_ADMIN_KEY", "https://api.openai.com"),)),
        ),
        (
            {"sources": [{**OPENAI, "kind": "anthropic", "base_url": "http://127.0.0.1:9/"}], "refetch_days": 3},
            ReconcileConfig(
                (ReconcileSource("oa", "anthropic", "OPENAI_ADMIN_KEY", "http://127.0.0.1:9"),), refetch_days=3
            ),
        ),
        (
            {"sources": [{**FOCUS, "map": {"i-0abc": {"team": "ml"}, "proj_1": {"service": "bot", "team": "cx"}}}]},
            ReconcileConfig(
                (
                    ReconcileSource(
                        "aws", "focus", path="/bills/*.parquet",
                        owners={"i-0abc": Owner(None, "ml"), "proj_1": Owner("bot", "cx")},
                    ),
                )
            ),
        ),
    ],
)  # fmt: skip
def test_parse(raw: dict[str, Any], expected: ReconcileConfig) -> None:
    assert parse_reconcile(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"sources": [{**OPENAI, "kind": "azure"}]}, "reconcile.sources[0].kind: one of openai, anthropic, focus"),
        ({"sources": [{"name": "oa", "kind": "openai"}]}, "reconcile.sources[0].admin_key_env: required"),
        ({"sources": [{**OPENAI, "admin_key_env": "sk-admin-abc123"}]}, "the name of an environment variable"),
        ({"sources": [{**FOCUS, "admin_key_env": "X"}]}, "reconcile.sources[0].admin_key_env: only for an API"),
        ({"sources": [{**OPENAI, "path": "/x"}]}, "reconcile.sources[0].path: only for kind focus"),
        ({"sources": [{"name": "aws", "kind": "focus"}]}, "reconcile.sources[0].path: required"),
        ({"sources": [OPENAI, OPENAI]}, "reconcile.sources[1].name: oa appears twice"),
        ({"sources": [{**OPENAI, "base_url": "ftp://x"}]}, "reconcile.sources[0].base_url: expected an http"),
        ({"sources": [{**OPENAI, "map": {"proj": {}}}]}, "reconcile.sources[0].map.proj: give a service"),
        ({"sources": [{**OPENAI, "map": {"proj": {"owner": "x"}}}]}, "reconcile.sources[0].map.proj.owner: unknown"),
        ({"refetch_days": 0}, "reconcile.refetch_days: expected at least 1"),
        ({"source": []}, "reconcile.source: unknown key"),
    ],
)
def test_mistakes_are_named(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_reconcile(raw)


def test_the_section_reaches_the_settings(tmp_path: Any) -> None:
    config = tmp_path / "breakeven.toml"
    config.write_text('[[reconcile.sources]]\nname = "oa"\nkind = "openai"\nadmin_key_env = "OPENAI_ADMIN_KEY"\n')
    settings = load_settings({"config": str(config)}, environ={})
    assert settings.reconcile.source("oa") == ReconcileSource(
        "oa", "openai", "OPENAI_ADMIN_KEY", "https://api.openai.com"
    )
    assert settings.reconcile.source("other") is None


@pytest.mark.parametrize(
    ("environ", "key"),
    [({"OPENAI_ADMIN_KEY": " sk-admin-1 \n"}, "sk-admin-1"), ({"OPENAI_ADMIN_KEY": " "}, None), ({}, None)],
)
def test_the_admin_key_is_read_from_the_variable_the_source_names(environ: dict[str, str], key: str | None) -> None:
    (source,) = parse_reconcile({"sources": [OPENAI]}).sources
    assert admin_key(source, environ) == key
    (focus,) = parse_reconcile({"sources": [FOCUS]}).sources
    assert admin_key(focus, environ) is None
