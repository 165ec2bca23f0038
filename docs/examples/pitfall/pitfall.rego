# Three ways to write "the candidate is not initialized". Only the last is
# safe: run it with input {} (no init_state at all) to see why.
package pitfall

# WRONG: true when init_state or its "initialized" field is missing.
fresh_by_negation if not input.init_state.initialized

# WRONG the other way: `not` over a call on a missing value is undefined,
# not true, so a deny written like this never fires when the section is missing.
section_missing_by_call if not is_object(input.init_state)

# RIGHT: prove the fact, and negate only helper rules.
fresh if input.init_state.initialized == false

section_present if is_object(input.init_state)

section_missing if not section_present
