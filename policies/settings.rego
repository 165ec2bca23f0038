# METADATA
# title: Settings
# description: |
#   Thresholds the stages compare facts with. Operators tune them by editing
#   this file in their policy directory (the change takes effect on the next
#   policy reload, and the revision changes with it); tests override them
#   with `with data.admitd.settings.catch_up as {...}`.
#
#   A JSON data file cannot override them: OPA evaluates a rule in
#   preference to base data at the same path, so such a file would be
#   ignored without a word.
package admitd.settings

# METADATA
# title: Catch-up thresholds
# description: |
#   When a staged non-voter counts as caught up, for the catch_up stage.
#   The defaults are Consul autopilot's (MaxTrailingLogs 250,
#   LastContactThreshold 200ms, ServerStabilizationTime 10s).
#
#   - max_lag_entries: how many log entries it may trail the leader by.
#   - max_last_contact_ms: how long ago, at most, it last heard from the leader.
#   - min_healthy_ms: how long the leader must have seen it healthy without
#     a break.
#
#   Each must be a number of at least 0; anything else denies every
#   promotion with CATCH_UP_MALFORMED.
catch_up := {
	"max_lag_entries": 250,
	"max_last_contact_ms": 200,
	"min_healthy_ms": 10000,
}
