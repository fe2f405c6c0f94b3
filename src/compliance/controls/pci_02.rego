# PCI-02: only the aggregator reaches the API in production.
package prescale.controls.pci_02

metadata := {
	"id": "PCI-02",
	"framework": "PCI",
	"severity": "high",
	"title": "Front-proxy authentication is on in production",
	"checks": "In production, API requests must carry a client certificate signed by the aggregator's front-proxy CA (authentication.requestheaderClientCaFile), and only the front-proxy's names are accepted (PCI DSS 4.0 requirements 7 and 8).",
	"fix": "Set authentication.requestheaderClientCaFile to the cluster's front-proxy CA (kube-system/extension-apiserver-authentication) and requestheaderAllowedNames to [front-proxy-client].",
}

production if input.settings.environment == "production"

findings contains f if {
	production
	not input.serve.authentication
	f := {"object": "authentication", "message": "the API answers any client: front-proxy authentication is off"}
}

findings contains f if {
	production
	input.serve.authentication
	count(input.serve.allowedNames) == 0
	f := {
		"object": "authentication.requestheaderAllowedNames",
		"message": "any certificate the front-proxy CA signed is accepted, not only the aggregator's",
		"remedy": {"set": "authentication.requestheaderAllowedNames", "value": ["front-proxy-client"]},
	}
}
