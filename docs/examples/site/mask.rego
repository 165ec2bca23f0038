# METADATA
# title: Decision-log masking
# description: |
#   As OPA's data.system.log.mask: JSON pointers erased from every
#   decision-log line before it is written. input is the decision-log event.
package system.log

mask contains "/input/site/token"
