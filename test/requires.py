"""Skip marks for tests that need the LLVM 22 tools or QEMU (`make setup` installs them)."""

import pytest

from tinyattn.backend import toolchain
from tinyattn.backend.targets import get_target
from tinyattn.backend.toolchain import ToolchainError

LINK_TOOLS = ("clang-22", "ld.lld-22", "llvm-nm-22")


def have_tools(*names: str) -> bool:
    try:
        for name in names:
            toolchain.tool(name)
    except ToolchainError:
        return False
    return True


def needs_tools(*names: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not have_tools(*names), reason=f"needs {', '.join(names)}")


def target_param(name: str, *extra_tools: str):
    """A pytest param for a runnable target, skipped when its tools are missing."""
    qemu = get_target(name).qemu
    return pytest.param(name, marks=needs_tools(*extra_tools, *LINK_TOOLS, *filter(None, [qemu])))
