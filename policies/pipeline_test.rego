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

# Permanent codes are the identity and init-state denies only: an
# unreachable or unhealthy peer must stay retryable.
test_permanent_codes if {
	"ALREADY_INITIALIZED" in pipeline.permanent_codes
	"DUPLICATE_ID" in pipeline.permanent_codes
	"IDENTITY_MISMATCH" in pipeline.permanent_codes
	not "IDENTITY_UNPROVEN" in pipeline.permanent_codes
	not "RAFT_UNREACHABLE" in pipeline.permanent_codes
	not "QUORUM_UNSAFE" in pipeline.permanent_codes
}
