"""Hardware detection, firmware profiles and the pure backend selector."""

from .detect import HardwareFacts, ThermalZone, cpu_temperature, detect
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
           "cpu_temperature",
           "detect",
           "load_profiles",
           "match_profile",
           "select_plan",
]
