# kubehop Spark worker AMI (runbook sections 4.1 and 6.0.1): built on top of
# the worker AMI of the same Kubernetes version, so kubelet, containerd and
# the CNI plugins stay identical to the plain workers; adds a JDK and the
# Hadoop libraries (scripts/spark.sh), then the same cleanup as the worker.
#
# Versions arrive as variables; nothing here names a Kubernetes version.
# content_hash is kubehop.imagehash.content_hash("spark", variables=...),
# which covers this template, scripts/spark.sh, scripts/cleanup.sh,
# scripts/lib.sh, the worker's content hash and the version variables
# including worker_ami_id, so an edit to either image's inputs or a rebuilt
# worker AMI yields a new Spark AMI name.
#
# Build this file on its own (it shares variable names with worker.pkr.hcl):
#   packer init spark.pkr.hcl
#   packer build -var-file=<vars.json> spark.pkr.hcl

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
  description = "AWS region the build instance runs in and the AMI is registered in (the worker AMI's region)."
}

variable "worker_ami_id" {
  type        = string
  description = "The kubehop worker AMI to build on (its kubernetes_version must equal this build's)."

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.worker_ami_id))
    error_message = "The worker_ami_id must be an AMI id (ami-...)."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes patch version x.y.z of the worker AMI (scripts/spark.sh checks its kubelet); part of the AMI name and tags."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.kubernetes_version))
    error_message = "The kubernetes_version must look like x.y.z (no leading v)."
  }
}

variable "content_hash" {
  type        = string
  description = "kubehop.imagehash.content_hash(\"spark\"): 12 hex digits; part of the AMI name."

  validation {
    condition     = can(regex("^[0-9a-f]{12}$", var.content_hash))
    error_message = "The content_hash must be 12 lowercase hex digits (kubehop.imagehash.content_hash)."
  }
}

variable "jdk_package" {
  type        = string
  description = "Ubuntu apt package providing the JDK/JRE, e.g. a *-jre-headless package."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.+-]+$", var.jdk_package))
    error_message = "The jdk_package must be an apt package name."
  }
}

variable "hadoop_version" {
  type        = string
  description = "Apache Hadoop release x.y.z whose libraries go to /opt/hadoop-<version> (/opt/hadoop points at it)."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.hadoop_version))
    error_message = "The hadoop_version must look like x.y.z."
  }
}

variable "hadoop_sha512" {
  type        = string
  description = "sha512 of hadoop-<hadoop_version>.tar.gz (Apache publishes it next to the tarball); the download is refused on mismatch."

  validation {
    condition     = can(regex("^[0-9a-fA-F]{128}$", var.hadoop_sha512))
    error_message = "The hadoop_sha512 must be 128 hex digits."
  }
}

variable "manifest_path" {
  type        = string
  description = "Where the manifest post-processor writes the build result (artifact_id is <region>:<ami-id>)."
}

# --- optional: where and how to build -------------------------------------------

variable "hadoop_mirror" {
  type        = string
  default     = "https://archive.apache.org/dist/hadoop/common"
  description = "https base URL in Apache's layout: <mirror>/hadoop-<v>/hadoop-<v>.tar.gz. The archive keeps every release; the sha512 guards any mirror."

  validation {
    condition     = can(regex("^https://", var.hadoop_mirror))
    error_message = "The hadoop_mirror must be an https:// URL."
  }
}

variable "instance_type" {
  type        = string
  default     = "t3.medium"
  description = "Instance type of the temporary build instance (amd64, like the worker AMI)."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty means the default VPC. The builder must reach it over SSH."
}

variable "root_volume_size" {
  type        = number
  default     = 30
  description = "Root EBS volume size in GiB; at least the worker AMI's."
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key for the encrypted root volume and snapshot; empty means the account's default EBS key."
}

variable "ami_name_prefix" {
  type        = string
  default     = "kubehop-spark"
  description = "AMI name prefix; the name is <prefix>-<kubernetes_version>-<content_hash>."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Extra tags for the AMI, its snapshot and the build instance; kubehop:* tags are set by the template."
}

locals {
  # the worker AMI it is built on is in the name: a new worker AMI never reuses an old spark AMI
  ami_name   = "${var.ami_name_prefix}-${var.kubernetes_version}-${var.content_hash}-${var.worker_ami_id}"
  remote_dir = "/tmp/kubehop"
  image_tags = merge(var.tags, {
    Name                         = local.ami_name
    "kubehop:role"               = "spark"
    "kubehop:kubernetes-version" = var.kubernetes_version
    "kubehop:content-hash"       = var.content_hash
    "kubehop:worker-ami"         = var.worker_ami_id
    "kubehop:jdk-package"        = var.jdk_package
    "kubehop:hadoop-version"     = var.hadoop_version
  })
  # Run as root with the provisioner's environment; the scripts are bash.
  execute_command = "chmod +x {{ .Path }}; sudo -E env {{ .Vars }} {{ .Path }}"
}

source "amazon-ebs" "spark" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id
  ssh_username  = "ubuntu"
  source_ami    = var.worker_ami_id

  ami_name        = local.ami_name
  ami_description = "kubehop spark worker: Kubernetes ${var.kubernetes_version}, Hadoop ${var.hadoop_version}, ${var.jdk_package}, content ${var.content_hash}"
  ena_support     = true
  sriov_support   = true

  # IMDSv2 only, on the build instance and as the image's default.
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
  name    = "spark"
  sources = ["source.amazon-ebs.spark"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.remote_dir}"]
  }

  # The helpers the scripts source; the worker build's copy was removed by
  # its cleanup.sh, so this build uploads its own.
  provisioner "file" {
    sources     = ["${path.root}/scripts/lib.sh"]
    destination = "${local.remote_dir}/"
  }

  provisioner "shell" {
    execute_command = local.execute_command
    environment_vars = [
      "KUBEHOP_LIB=${local.remote_dir}/lib.sh",
      "KUBERNETES_VERSION=${var.kubernetes_version}",
      "JDK_PACKAGE=${var.jdk_package}",
      "HADOOP_VERSION=${var.hadoop_version}",
      "HADOOP_MIRROR=${var.hadoop_mirror}",
      "HADOOP_SHA512=${var.hadoop_sha512}",
    ]
    scripts = ["${path.root}/scripts/spark.sh"]
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
      role               = "spark"
      ami_name           = local.ami_name
      kubernetes_version = var.kubernetes_version
      content_hash       = var.content_hash
      worker_ami_id      = var.worker_ami_id
    }
  }
}
