"""The plugin service through manager.plugins, embedded and remote."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hms_agent.lifecycle import LifecycleError, LifecycleManager, NotFoundError, PluginState

from .conftest import Server


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_plugins(mode: str, plugin_repo: str, start_server: Callable[..., Server]) -> None:
    if mode == "embedded":
        m = LifecycleManager(plugin_repo=plugin_repo)
    else:
        m = LifecycleManager(endpoint=start_server(plugin_repo=plugin_repo).url)
    with m:
        p = m.plugins
        p.scan()
        ids = sorted((x.id, x.version) for x in p.iter())
        assert ("com.example.greeter", "1.0.0") in ids and ("com.example.greeter", "1.1.0") in ids
        g = p.get("com.example.greeter", "1.0.0")
        assert g.manifest is not None and g.manifest.name == "Greeter 1.0.0"
        watch = p.watch(id="com.example.greeter", from_sequence=1)
        states = {x.state for x in p.iter(id="com.example.greeter")}
        assert states <= {PluginState.DISCOVERED, PluginState.REGISTERED}
        if g.state == PluginState.DISCOVERED:
            g = p.validate("com.example.greeter", "1.0.0", reason="check")
        assert g.state == PluginState.REGISTERED
        g = p.load("com.example.greeter", "1.0.0")
        assert g.state == PluginState.INACTIVE
        g = p.activate("com.example.greeter", "1.0.0")
        assert g.state == PluginState.ACTIVE
        r = p.resolve("com.example.greeter", "^1.0.0")
        assert r.plugin is not None and r.plugin.version == "1.0.0"
        g = p.deactivate("com.example.greeter", "1.0.0")
        assert g.state == PluginState.INACTIVE
        g = p.deprecate("com.example.greeter", "1.0.0", reason="old", replacement="1.1.0")
        assert g.state == PluginState.DEPRECATED
        hist = p.history("com.example.greeter", "1.0.0")
        assert [e.to_state for e in hist.events][-1] == PluginState.DEPRECATED
        seen = []
        for ev in watch:
            seen.append(ev)
            if ev.to_state == PluginState.DEPRECATED:
                break
        watch.close()
        assert seen[-1].plugin_id == "com.example.greeter"
        with pytest.raises(NotFoundError):
            p.get("com.example.none", "9.9.9")
        with pytest.raises(LifecycleError):  # only a failed plugin can be reset
            p.reset("com.example.greeter", "1.1.0")
