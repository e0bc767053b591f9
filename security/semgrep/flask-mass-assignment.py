from flask import Blueprint, request
from pydantic import BaseModel, ConfigDict

bp = Blueprint("profiles", __name__)


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str


@bp.post("/profiles")
def create_profile(db):
    # ruleid: flask-mass-assignment
    db.profiles.insert_one(request.get_json())
    return "", 201


@bp.patch("/profiles/me")
def update_profile(db, user):
    changes = request.json
    # ruleid: flask-mass-assignment
    db.profiles.update_one({"_id": user.id}, {"$set": changes})
    return "", 204


@bp.patch("/settings")
def update_settings(settings):
    for key, value in request.get_json().items():
        # ruleid: flask-mass-assignment
        setattr(settings, key, value)
    return "", 204


@bp.patch("/profiles/me/safe")
def update_profile_safe(db, user):
    update = ProfileUpdate.model_validate(request.get_json())
    # ok: flask-mass-assignment
    db.profiles.update_one({"_id": user.id}, {"$set": {"display_name": update.display_name}})
    return "", 204


@bp.post("/profiles/safe")
def create_profile_safe(db, user):
    body = ProfileUpdate.model_validate(request.get_json())
    # ok: flask-mass-assignment
    db.profiles.insert_one({"owner": user.id, "display_name": body.display_name})
    return "", 201
