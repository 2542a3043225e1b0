"""The daemon's periodic jobs: what runs when, and how the last run went."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from radius_contracts.api.deps import CallerDep
from radius_contracts.api.schemas.jobs import JobPublic
from radius_contracts.errors import NotFound
from radius_contracts.services.jobs import JobBoard

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobName = Annotated[str, Path(min_length=1, max_length=64, description="The job's name.")]


def _board(request: Request) -> JobBoard | None:
    board: JobBoard | None = getattr(request.app.state, "jobs", None)
    return board


@router.get("", response_model=list[JobPublic], summary="List the periodic jobs")
async def list_jobs(request: Request, _caller: CallerDep) -> Any:
    """Every job of this daemon, in a fixed order.

    Shared jobs (stale sessions, history, leases, contract dates) run once per turn across all
    nodes on the database, and their record comes from the database: every node shows the
    same. Local jobs run on each node and show this node's record since it started.
    """
    board = _board(request)
    return [JobPublic.model_validate(job) for job in await board.statuses()] if board else []


@router.get("/{name}", response_model=JobPublic, summary="Get a periodic job")
async def get_job(request: Request, _caller: CallerDep, name: JobName) -> Any:
    """One job by name; 404 when this daemon has no job of that name."""
    board = _board(request)
    if board is None:
        raise NotFound(f"there is no job {name!r}", field="name")
    return JobPublic.model_validate(await board.status(name))
