"""The config that prices the demo, rendered from the breakeven.toml template shipped in this package.

The template is TOML with string.Template placeholders (TOML itself uses no `$`, while its inline
tables use braces): $config_name, $db_url, $port, the dates $fx_from, $fx_change and $bought, and
$pool_70b, the model the 70B pool serves, so the config matches the traffic the demo sends.
"""

from __future__ import annotations

from datetime import date, timedelta
from importlib.resources import files
from string import Template

from breakeven.collector.demo.traffic import POOL_70B

CONFIG_NAME = "breakeven.toml"


def config_text(db_url: str, port: int, first_day: date) -> str:
    """The config that prices the demo: price book, discount, FX, the two pools, a candidate box, alerts.

    Dates are set relative to the month's first day: FX rates and prices from a year before it, a
    rate change twelve days in, and the owned box bought 200 days before.
    """
    template = Template(files("breakeven.collector.demo").joinpath("breakeven.toml").read_text(encoding="utf-8"))
    return template.substitute(
        config_name=CONFIG_NAME,
        db_url=db_url,
        port=port,
        fx_from=(first_day - timedelta(days=365)).isoformat(),
        fx_change=(first_day + timedelta(days=12)).isoformat(),
        bought=(first_day - timedelta(days=200)).isoformat(),
        pool_70b=POOL_70B,
    )
