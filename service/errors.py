"""Errors meant for the API caller: an HTTP status and a message naming the field or resource."""

from __future__ import annotations


class ApiError(Exception):
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ApiError):
    status_code = 422


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class Unauthorized(ApiError):
    status_code = 401


class ServiceUnavailable(ApiError):
    """The cluster could not be reached; what could be recorded was recorded."""

    status_code = 503
