# GDPR-03: data retention within the declared maximum.
package prescale.controls.gdpr_03

metadata := {
	"id": "GDPR-03",
	"framework": "GDPR",
	"severity": "medium",
	"title": "Data is kept no longer than the declared maximum",
	"checks": "compliance.retention.maxDays is declared; the state's retention (compliance.retention.days) and the history each fit keeps (every metric's history) are within it (Art. 5(1)(e) storage limitation).",
	"fix": "Declare the maximum, keep state no longer than it, and shorten a metric's history window to fit (this changes its forecasts: a person decides).",
}

max_days := input.settings.retention.maxDays

findings contains f if {
	max_days == null
	f := {"object": "compliance.retention.maxDays", "message": "no maximum retention is declared for series data"}
}

findings contains f if {
	max_days != null
	input.settings.retention.days == null
	f := {
		"object": "compliance.retention.days",
		"message": "how long state is kept is not declared",
		"remedy": {"set": "compliance.retention.days", "value": max_days},
	}
}

findings contains f if {
	max_days != null
	days := input.settings.retention.days
	days != null
	days > max_days
	f := {
		"object": "compliance.retention.days",
		"message": sprintf("state is kept %v days, longer than the declared maximum of %v", [days, max_days]),
		"remedy": {"set": "compliance.retention.days", "value": max_days},
	}
}

findings contains f if {
	max_days != null
	some h in input.serve.histories
	h.days > max_days
	f := {
		"object": sprintf("metric %s of %s/%s", [h.metric, h.namespace, h.workload]),
		"message": sprintf("each fit keeps %v days of history, longer than the declared maximum of %v", [h.days, max_days]),
	}
}
