"""One Screen class per wizard step (plus the checklist and the modals)."""

from __future__ import annotations

from textual.screen import Screen


def make_step_screens() -> dict[str, Screen[None]]:
    from .build import BuildScreen
    from .checkpoint import CheckpointScreen
    from .connection import ConnectionScreen
    from .deploy import DeployScreen
    from .permissions import PermissionsScreen
    from .settings import SettingsScreen
    from .variants import VariantsScreen

    return {
        "connection": ConnectionScreen(),
        "checkpoint": CheckpointScreen(),
        "variants": VariantsScreen(),
        "settings": SettingsScreen(),
        "permissions": PermissionsScreen(),
        "build": BuildScreen(),
        "deploy": DeployScreen(),
    }
