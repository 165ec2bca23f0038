# Tests for the pipeline: the order, and that every stage named exists and
# fails closed.
package admitd.pipeline_test

import data.admitd.fixtures
import data.admitd.pipeline

test_shipped_order if {
	pipeline.stages == ["reachability", "init_state", "topology"]
}

test_good_facts_pass_every_stage if {
	every name in pipeline.stages {
		data.admitd.stages[name].allow with input as fixtures.good
		count(data.admitd.stages[name].deny) == 0 with input as fixtures.good
	}
}

# Every stage denies, with a reason, when it is given nothing at all.
test_every_stage_fails_closed_on_empty_facts if {
	every name in pipeline.stages {
		data.admitd.stages[name].allow == false with input as {}
		count(data.admitd.stages[name].deny) > 0 with input as {}
	}
}

test_shipped_promote_order if {
	pipeline.promote_stages == ["reachability", "catch_up", "topology"]
}

test_promote_facts_pass_every_promote_stage if {
	every name in pipeline.promote_stages {
		data.admitd.stages[name].allow with input as fixtures.promote
			with data.admitd.settings.catch_up as fixtures.catch_up_settings
		count(data.admitd.stages[name].deny) == 0 with input as fixtures.promote
			with data.admitd.settings.catch_up as fixtures.catch_up_settings
	}
}

test_every_promote_stage_fails_closed_on_empty_facts if {
	every name in pipeline.promote_stages {
		data.admitd.stages[name].allow == false with input as {"phase": "promote"}
		count(data.admitd.stages[name].deny) > 0 with input as {"phase": "promote"}
	}
}

# Each phase's facts fail the other phase's pipeline: admission facts have
# no catch_up, a staged candidate is a duplicate of itself if admitted, and
# removal facts have neither reachability nor init_state nor catch_up (the
# topology stage, in every pipeline, judges them by their phase).
test_phases_do_not_mix if {
	data.admitd.stages.catch_up.allow == false with input as fixtures.good
	data.admitd.stages.topology.allow == false with input as fixtures.patched("/topology", fixtures.promote.topology)
	every name in ["reachability", "init_state", "catch_up"] {
		data.admitd.stages[name].allow == false with input as fixtures.remove
			with data.admitd.settings.catch_up as fixtures.catch_up_settings
	}
}

test_shipped_remove_order if {
	pipeline.remove_stages == ["topology"]
}

test_remove_facts_pass_every_remove_stage if {
	every facts in [fixtures.remove, fixtures.demote] {
		every name in pipeline.remove_stages {
			data.admitd.stages[name].allow with input as facts
			count(data.admitd.stages[name].deny) == 0 with input as facts
		}
	}
}

test_every_remove_stage_fails_closed_on_empty_facts if {
	every name in pipeline.remove_stages {
		data.admitd.stages[name].allow == false with input as {"phase": "remove"}
		count(data.admitd.stages[name].deny) > 0 with input as {"phase": "remove"}
	}
}

# A removal gives up at once on what waiting cannot change: the member is
# gone, it leads (the request must go to the next leader), it is the only
# voter, it has no vote to take away. Too few healthy voters may recover,
# as may a candidate's health before its promotion.
test_removal_codes if {
	every code in ["NOT_A_MEMBER", "REMOVES_LEADER", "LAST_VOTER", "NOT_A_VOTER"] {
		code in pipeline.permanent_codes
	}
	not "QUORUM_UNSAFE" in pipeline.permanent_codes
	not "CANDIDATE_UNHEALTHY" in pipeline.permanent_codes
}

# Permanent codes are the identity and init-state denies, and the
# removals' (test_removal_codes): an unreachable or unhealthy peer, or a
# raft server not answering yet, must stay retryable.
test_permanent_codes if {
	"ALREADY_INITIALIZED" in pipeline.permanent_codes
	"DUPLICATE_ID" in pipeline.permanent_codes
	"IDENTITY_MISMATCH" in pipeline.permanent_codes
	"RAFT_ID_MISMATCH" in pipeline.permanent_codes
	"INIT_STATE_CONTRADICTION" in pipeline.permanent_codes
	not "IDENTITY_UNPROVEN" in pipeline.permanent_codes
	not "RAFT_UNREACHABLE" in pipeline.permanent_codes
	not "RAFT_NOT_ANSWERING" in pipeline.permanent_codes
	not "CHANGE_MALFORMED" in pipeline.permanent_codes
	not "QUORUM_UNSAFE" in pipeline.permanent_codes
}

# A candidate that runs only hashicorp/raft, and one admitted in stage as a
# non-voter, pass every stage of the admission pipeline.
test_raft_only_and_staged_candidates_pass_every_stage if {
	every facts in [fixtures.raft_only, fixtures.staged] {
		every name in pipeline.stages {
			data.admitd.stages[name].allow with input as facts
			count(data.admitd.stages[name].deny) == 0 with input as facts
		}
	}
}

# A staged join's denies can all pass later.
test_staged_join_codes_not_permanent if {
	every code in [
		"CANDIDATE_NOT_STAGED", "CATCH_UP_MALFORMED", "CATCH_UP_MISSING", "CATCH_UP_NOT_COLLECTED",
		"LAGGING", "NO_RECENT_CONTACT", "NOT_STABLE", "PHASE_MISMATCH", "STAGING_FULL", "STALE_TERM",
	] {
		not code in pipeline.permanent_codes
	}
}
