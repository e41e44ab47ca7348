"""The tinyattn `Universe`: makes plain `xdsl-opt` (and tinyattn-opt) see our dialects and
passes through the `xdsl.universe` entry point."""

from xdsl.universe import Universe


def _tinyattn_dialect():
    from tinyattn.dialects.tinyattn import Tinyattn

    return Tinyattn


TINYATTN_UNIVERSE = Universe(
    all_dialects={"tinyattn": _tinyattn_dialect},
    all_passes={},
)
