"""What an attempt's result does to its job: decisions (pure) the worker hands to the store.

Succeeded → succeeded. Failed → queued again after the backoff (a transient error with attempts
left), or dead (a permanent error, or the last attempt). Nothing to deliver → skipped.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from notifyd.backoff import RetryPolicy
from notifyd.errors import DeliveryError, PermanentError, TransientError
from notifyd.model import AttemptOutcome, Claim, Finish, Job, JobState, Outcome
from notifyd.store import Store


def succeeded(detail: str) -> Finish:
    return Finish(JobState.SUCCEEDED, AttemptOutcome.SUCCEEDED, detail=detail)


def skipped(reason: str) -> Finish:
    return Finish(JobState.SKIPPED, AttemptOutcome.SKIPPED, last_error=reason, error=reason)


def failed(job: Job, error: DeliveryError, policy: RetryPolicy, now: float,
           rand: Callable[[], float] = random.random) -> Finish:
    """A retry at now + the backoff step (or the receiver's Retry-After), or dead."""
    exhausted = job.attempts >= job.max_attempts
    permanent = isinstance(error, PermanentError) or not isinstance(error, TransientError)
    if permanent or exhausted:
        reason = error.error if permanent else f"{error.error} (gave up after {job.attempts} attempts)"
        return Finish(JobState.DEAD, AttemptOutcome.FAILED, last_error=reason, error=error.error,
                      detail=error.detail)
    retry_after = error.retry_after if isinstance(error, TransientError) else None
    delay = policy.delay(job.attempts, retry_after, rand)
    return Finish(JobState.QUEUED, AttemptOutcome.RETRY, last_error=error.error, error=error.error,
                  detail=error.detail, run_at=now + delay)


def record_outcome(store: Store, claim: Claim, finish: Finish, now: float) -> Outcome:
    """Store an attempt's end and say what it did; state "lost" when the lease had already been
    taken back (another worker owns the job now, and nothing was written). StoreUnavailable when
    the store refuses it: sending the same outcome again is safe (never recorded twice)."""
    job = claim.job
    if not store.finish(claim, finish, now):
        return Outcome("lost", job.attempts, job.max_attempts)
    retry_in = finish.run_at - now if finish.run_at is not None else None
    return Outcome(str(finish.state), job.attempts, job.max_attempts, retry_in=retry_in)
