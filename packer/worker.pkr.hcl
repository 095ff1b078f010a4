# kubehop worker AMI (runbook sections 3.2 and 6.0.1): Ubuntu 22.04 with
# containerd, kubelet/kubeadm/kubectl and the CNI plugins, configured from
# files/node-settings.yaml. One immutable image per Kubernetes patch version
# and content hash; the ASG launch template then points at it (runbook 3.3).
#
# Every version arrives as a variable (from kubehop/catalog.py); nothing in
# this directory names a Kubernetes or containerd version. content_hash is
# kubehop.imagehash.content_hash("worker", variables=...): it covers this
# template, every file the build uses and the version variables, so any edit
# or version change yields a new AMI name, and an unchanged input set finds
# the image it already built.
#
# Build this file on its own (worker.pkr.hcl and spark.pkr.hcl declare the
# same variable names, so `packer build .` would refuse the directory):
#   packer init worker.pkr.hcl
#   packer build -var-file=<vars.json> worker.pkr.hcl

packer {
  # HCL2 templates with required_plugins need Packer 1.7 or later
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "~> 1.3"
    }
  }
}

# --- required: what to build --------------------------------------------------

variable "region" {
  type        = string
  description = "AWS region the build instance runs in and the AMI is registered in."
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes patch version x.y.z for kubelet, kubeadm and kubectl (from kubehop/catalog.py); part of the AMI name."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.kubernetes_version))
    error_message = "The kubernetes_version must look like x.y.z (no leading v, no package revision)."
  }
}

variable "kubernetes_minor" {
  type        = string
  description = "Kubernetes minor x.y selecting the pkgs.k8s.io repository; must be the minor of kubernetes_version (checked by scripts/kubernetes.sh)."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+$", var.kubernetes_minor))
    error_message = "The kubernetes_minor must look like x.y (no leading v)."
  }
}

variable "containerd_version" {
  type        = string
  description = "containerd version x.y.z, installed as containerd.io=<version>-* from Docker's apt repository (from kubehop/catalog.py)."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.containerd_version))
    error_message = "The containerd_version must look like x.y.z."
  }
}

variable "pause_image" {
  type        = string
  description = "The pause (sandbox) image the minor's kubeadm expects, e.g. registry.k8s.io/pause:3.9 (kubehop/catalog.py Release.pause_image): containerd's sandbox_image, pulled into the image."

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+$", var.pause_image))
    error_message = "The pause_image must be a registry/repository:tag image reference."
  }
}

variable "cni_plugins_version" {
  type        = string
  description = "containernetworking/plugins release x.y.z installed into /opt/cni/bin."

  validation {
    condition     = can(regex("^v?[0-9]+\\.[0-9]+\\.[0-9]+$", var.cni_plugins_version))
    error_message = "The cni_plugins_version must look like x.y.z."
  }
}

variable "cni_plugins_sha256" {
  type        = string
  description = "sha256 of cni-plugins-linux-amd64-v<cni_plugins_version>.tgz; the download is refused on mismatch."

  validation {
    condition     = can(regex("^[0-9a-fA-F]{64}$", var.cni_plugins_sha256))
    error_message = "The cni_plugins_sha256 must be 64 hex digits."
  }
}

variable "content_hash" {
  type        = string
  description = "kubehop.imagehash.content_hash(\"worker\"): 12 hex digits over this template and the files it uses; part of the AMI name."

  validation {
    condition     = can(regex("^[0-9a-f]{12}$", var.content_hash))
    error_message = "The content_hash must be 12 lowercase hex digits (kubehop.imagehash.content_hash)."
  }
}

variable "manifest_path" {
  type        = string
  description = "Where the manifest post-processor writes the build result (artifact_id is <region>:<ami-id>)."
}

# --- optional: where and how to build -------------------------------------------

variable "source_ami_id" {
  type        = string
  default     = ""
  description = "Exact source AMI id; empty means the newest image matching source_ami_filter_name owned by source_ami_owner."

  validation {
    condition     = var.source_ami_id == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.source_ami_id))
    error_message = "The source_ami_id must be empty or an AMI id (ami-...)."
  }
}

variable "source_ami_filter_name" {
  type        = string
  default     = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
  description = "AMI name pattern for the source image when source_ami_id is empty (Ubuntu 22.04 jammy, amd64, server)."
}

variable "source_ami_owner" {
  type        = string
  default     = "099720109477"
  description = "Owner account of the source image when source_ami_id is empty (Canonical)."
}

variable "instance_type" {
  type        = string
  default     = "t3.medium"
  description = "Instance type of the temporary build instance (amd64)."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty means the default VPC. The builder must reach it over SSH."
}

variable "root_volume_size" {
  type        = number
  default     = 30
  description = "Root EBS volume size in GiB, inherited by nodes launched from the AMI unless the launch template overrides it."
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key for the encrypted root volume and snapshot; empty means the account's default EBS key."
}

variable "ami_name_prefix" {
  type        = string
  default     = "kubehop-worker"
  description = "AMI name prefix; the name is <prefix>-<kubernetes_version>-<content_hash>."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Extra tags for the AMI, its snapshot and the build instance; kubehop:* tags are set by the template."
}

locals {
  ami_name   = "${var.ami_name_prefix}-${var.kubernetes_version}-${var.content_hash}"
  remote_dir = "/tmp/kubehop"
  image_tags = merge(var.tags, {
    Name                         = local.ami_name
    "kubehop:role"               = "worker"
    "kubehop:kubernetes-version" = var.kubernetes_version
    "kubehop:content-hash"       = var.content_hash
    "kubehop:containerd-version" = var.containerd_version
    "kubehop:pause-image"        = var.pause_image
    "kubehop:cni-plugins"        = var.cni_plugins_version
    "kubehop:source-ami"         = "{{ .SourceAMI }}"
  })
  # Run as root with the provisioner's environment; the scripts are bash.
  execute_command = "chmod +x {{ .Path }}; sudo -E env {{ .Vars }} {{ .Path }}"
}

source "amazon-ebs" "worker" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id
  ssh_username  = "ubuntu"

  # Exactly one of the two: an explicit AMI id, or the filter.
  source_ami = var.source_ami_id
  dynamic "source_ami_filter" {
    for_each = var.source_ami_id == "" ? [1] : []
    content {
      filters = {
        name                  = var.source_ami_filter_name
        architecture          = "x86_64"
        "root-device-type"    = "ebs"
        "virtualization-type" = "hvm"
      }
      owners      = [var.source_ami_owner]
      most_recent = true
    }
  }

  ami_name        = "${var.ami_name_prefix}-${var.kubernetes_version}-${var.content_hash}"
  ami_description = "kubehop worker: Kubernetes ${var.kubernetes_version}, containerd ${var.containerd_version}, content ${var.content_hash}"
  ena_support     = true
  sriov_support   = true

  # IMDSv2 only, on the build instance and as the image's default (runbook
  # 6.0.3: the clusters run IMDSv2). Nothing in the build reads IMDS.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = var.root_volume_size
    volume_type           = "gp3"
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }

  tags            = local.image_tags
  snapshot_tags   = local.image_tags
  run_tags        = merge(local.image_tags, { Name = "packer-${local.ami_name}" })
  run_volume_tags = merge(local.image_tags, { Name = "packer-${local.ami_name}" })
}

build {
  name    = "worker"
  sources = ["source.amazon-ebs.worker"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.remote_dir}"]
  }

  # node-settings.yaml is the single source of node settings; nodesettings.py
  # is how the scripts read it; lib.sh holds the helpers every script sources
  # (Packer runs each script on its own, so they cannot share code otherwise).
  provisioner "file" {
    sources = [
      "${path.root}/files/node-settings.yaml",
      "${path.root}/files/nodesettings.py",
      "${path.root}/scripts/lib.sh",
    ]
    destination = "${local.remote_dir}/"
  }

  provisioner "shell" {
    execute_command = local.execute_command
    environment_vars = [
      "KUBEHOP_FILES_DIR=${local.remote_dir}",
      "KUBEHOP_LIB=${local.remote_dir}/lib.sh",
      "KUBERNETES_VERSION=${var.kubernetes_version}",
      "KUBERNETES_MINOR=${var.kubernetes_minor}",
      "CONTAINERD_VERSION=${var.containerd_version}",
      "PAUSE_IMAGE=${var.pause_image}",
      "CNI_PLUGINS_VERSION=${var.cni_plugins_version}",
      "CNI_PLUGINS_SHA256=${var.cni_plugins_sha256}",
    ]
    scripts = [
      "${path.root}/scripts/base.sh",
      "${path.root}/scripts/containerd.sh",
      "${path.root}/scripts/kubernetes.sh",
    ]
  }

  provisioner "shell" {
    execute_command = local.execute_command
    environment_vars = [
      "KUBEHOP_FILES_DIR=${local.remote_dir}",
      "KUBEHOP_LIB=${local.remote_dir}/lib.sh",
    ]
    scripts = ["${path.root}/scripts/cleanup.sh"]
  }

  post-processor "manifest" {
    output     = "${var.manifest_path}"
    strip_path = true
    custom_data = {
      role               = "worker"
      ami_name           = local.ami_name
      kubernetes_version = var.kubernetes_version
      content_hash       = var.content_hash
    }
  }
}
