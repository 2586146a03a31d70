defmodule Hubcache.Error do
  @moduledoc """
  A failure reported by hubcache.

    * `:code` - what went wrong, as an atom a program can match on: `:invalid_argument`,
      `:not_cached`, `:repo_not_found`, `:gated`, `:revision_not_found`,
      `:entry_not_found`, `:integrity`, `:network`, `:disk_full`, `:io`, `:cancelled`,
      `:http` or `:internal`.
    * `:status` - the same as a number: the hubcache CLI's exit code and the C API's
      status (docs/cli.md, "Exit codes").
    * `:message` - what failed, for which repo, file and revision, and what to try.
  """
  defexception [:code, :status, :message]

  @type t :: %__MODULE__{code: atom(), status: pos_integer(), message: String.t()}
end
