"""The adopt stage says what an import does (nothing to the cluster), as the README's
adoption section does: no import step reads as an upgrade or a rollout."""
from kubehop.plan.stages import build, read_stack_file
from tests.plan_helpers import prod_b


def test_imports_read_as_imports_and_the_rest_as_the_readme_says():
    plan = build(read_stack_file(prod_b()), stack="prod-b", to="1.26", policy=None)
    adopt = plan["stages"][0]
    assert adopt["name"] == "adopt"
    imports = [s for s in adopt["steps"] if s["op"] == "import"]
    assert {s["action"] for s in imports} == {"addon", "node-pool"}
    assert {s["target"] for s in imports if s["action"] == "addon"} == set(prod_b()["config"]["kubehop:adopt"]["addons"])
    for s in imports:
        assert s["risk"] == "low" and s["impact"].startswith("Imported as it runs today"), s["id"]
        assert "upgrade" not in s["impact"].lower() and "instance refresh" not in s["impact"], s["id"]
    # README step 4: no AMI is built and no node rolled on the adoption run
    assert not [s for s in adopt["steps"] if s["action"] in ("image-build", "launch-template") and s["op"] == "replace"]
    assert not [s for s in adopt["steps"] if s["action"] == "node-pool" and s["op"] != "import"]
