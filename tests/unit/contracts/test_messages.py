"""Message builders: what makes two messages the same fact."""

from __future__ import annotations


def test_core_hears_one_acceptance_once_whichever_transaction_saw_it() -> None:
    from contracts.employee import SyncStatusUpdate
    from contracts.messages import core_sync_serial

    def update(cid: str, accept_no: str, status: str = "synced") -> SyncStatusUpdate:
        return SyncStatusUpdate(correlation_id=cid, biz_type="tax.employee.enroll",
                                business_key="U:P", status=status,  # type: ignore[arg-type]
                                accept_no=accept_no)

    first = core_sync_serial(update("c1", "SL1"), "key-1")
    assert core_sync_serial(update("c2", "SL1"), "key-2") == first  # a re-post, replayed
    assert core_sync_serial(update("c1", "SL2"), "key-1") != first  # another acceptance
    assert core_sync_serial(update("c3", "", "rejected"), "key-3") == "key-3"
