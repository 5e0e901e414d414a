"""The hook registry (crm.hooks) and the reactions the factory subscribes."""
import pytest

from crm import hooks


def test_factory_subscribes_the_cross_feature_reactions(app):
    from crm.appeals import notifications
    from crm.qa import hooks as qa_hooks

    assert notifications.after_transition in hooks.subscribers("appeal.transitioned")
    assert qa_hooks._after_transcript in hooks.subscribers("call.transcribed")
    assert qa_hooks._call_page in hooks.subscribers("call.page")
    from crm.dpo import hooks as dpo_hooks

    assert dpo_hooks._checkpoint_restarted in hooks.subscribers("audit.checkpoint_restarted")


def test_fire_runs_subscribers_in_order_and_refuses_unknown_names():
    seen = []

    def first(**kw):
        seen.append(("first", kw))
        return 1

    def second(**kw):
        seen.append(("second", kw))
        return 2

    try:
        hooks.subscribe("consent.changed", first)
        hooks.subscribe("consent.changed", second)
        hooks.subscribe("consent.changed", first)  # twice: still once
        assert hooks.fire("consent.changed", citizen_id="c1", purpose="p", status="active")[-2:] == [1, 2]
        assert [name for name, _ in seen] == ["first", "second"]
    finally:
        hooks.unsubscribe("consent.changed", first)
        hooks.unsubscribe("consent.changed", second)
    assert first not in hooks.subscribers("consent.changed")
    with pytest.raises(hooks.UnknownHook):
        hooks.fire("call.transcribd", call_id="x")
