"""Plain helpers of the Totara client tests."""
from __future__ import annotations


def seed_users(sim, count: int, prefix: str = "seed", **extra) -> list[int]:
    """Insert users straight into the simulator's database (fast set-up, bypasses the API rules)."""
    users = [{"username": f"{prefix}{i:04d}", "idnumber": f"{prefix.upper()}-{i:04d}", "firstname": "Seed",
              "lastname": f"L{i:04d}", **extra} for i in range(count)]
    return sim.control("seed", {"users": users})["users"]


def new_user(n: int, **extra) -> dict:
    """A valid core_user_create_user input."""
    return {"username": f"user{n}", "idnumber": f"ID-{n:05d}", "firstname": "Test", "lastname": f"User{n}",
            "email": f"user{n}@example.org", "generate_password": True, **extra}
