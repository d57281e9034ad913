"""The job type registry: one job type is declared in one place and read everywhere.

A job type says what input it takes (used by the web form and the API), how to instruct the
model, which lane and model run it, its authority class and review policy, its deadline and
attempt limit, (for external effects) the action that runs once a reviewer approves, and the
tools the model may call during a run (``tools``).
"""

from .registry import (
    AuthorityClass,
    InputField,
    JobType,
    Lane,
    all_job_types,
    get_job_type,
    register,
)
from .tools import RunLimits, Tool, ToolError

__all__ = [
    "AuthorityClass",
    "InputField",
    "JobType",
    "Lane",
    "all_job_types",
    "get_job_type",
    "register",
    "RunLimits",
    "Tool",
    "ToolError",
]
