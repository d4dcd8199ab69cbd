"""The JSON API, mounted under /api/v1."""

from fastapi import APIRouter

from app.api.routes import auth, courses, instructor, problems, submissions

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(problems.router)
api_router.include_router(submissions.router)
api_router.include_router(instructor.router)
api_router.include_router(courses.router)
