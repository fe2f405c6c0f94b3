# PCI-04: least privilege in the rendered manifests.
package prescale.controls.pci_04

metadata := {
	"id": "PCI-04",
	"framework": "PCI",
	"severity": "high",
	"title": "RBAC grants least privilege",
	"checks": "In the rendered manifests: no Role or ClusterRole rule with * in its verbs, resources or API groups, no binding to cluster-admin, admin or edit, and no privileged container (PCI DSS 4.0 requirement 7.2).",
	"fix": "Grant only the verbs and resources prescale uses (prescale deploy render writes them), and bind no broad role.",
}

broad_roles := {"cluster-admin", "admin", "edit"}

findings contains f if {
	some m in input.manifests
	m.kind in {"Role", "ClusterRole"}
	some rule in m.rules
	some field in ["verbs", "resources", "apiGroups"]
	"*" in rule[field]
	f := {"object": sprintf("%s %s (%s)", [m.kind, m.metadata.name, m._file]), "message": sprintf("a rule grants * in its %s", [field])}
}

findings contains f if {
	some m in input.manifests
	m.kind in {"RoleBinding", "ClusterRoleBinding"}
	m.roleRef.name in broad_roles
	f := {"object": sprintf("%s %s (%s)", [m.kind, m.metadata.name, m._file]), "message": sprintf("binds the broad role %s", [m.roleRef.name])}
}

findings contains f if {
	some m in input.manifests
	m.kind == "Deployment"
	some c in m.spec.template.spec.containers
	c.securityContext.privileged == true
	f := {"object": sprintf("Deployment %s (%s)", [m.metadata.name, m._file]), "message": sprintf("container %s is privileged", [c.name])}
}
