"""Hardware detection, firmware profiles and the pure backend selector."""

from .detect import HardwareFacts, ThermalZone, detect
from .profiles import Profile, load_profiles, match_profile
from .select import Candidate, Plan, Rejection, Request, select_plan

__all__ = [
           "Candidate",
           "HardwareFacts",
           "Plan",
           "Profile",
           "Rejection",
           "Request",
           "ThermalZone",
           "detect",
           "load_profiles",
           "match_profile",
           "select_plan",
]
