"""Placeholder: hardware detection + work_queue_worker launcher (see issue 5)."""
