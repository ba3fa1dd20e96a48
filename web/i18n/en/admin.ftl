# The admin console, in English. Keys are shared with id/admin.ftl.
admin-nav = Console
admin-overview = Sync health
admin-sdp = ServiceDesk Plus
admin-mapping = Mapping
admin-branding = Branding
admin-users = Users
admin-audit = Audit log
admin = Administrator
customer = Customer
integration = Integration (portal API)
active = Active
disabled = Disabled
enable = Enable
disable = Disable
save = Save
open = Open
retry = Retry
discard = Discard
seconds = { $n } s
attempts = { $n ->
    [one] one attempt
   *[other] { $n } attempts
}

setup-title = Set up deskbridge
setup-intro = No administrator exists yet. Create the first one with the one-time setup token.
setup-token = Setup token
setup-token-hint = Printed in the service log when deskbridge started (journalctl -u deskbridge).
setup-submit = Create administrator
field-name = Name
field-role = Role
password-hint = At least 10 characters.

sync-run = Poll now
sync-sweep = Reconcile now
sync-state = Sync
sync-on = Running
sync-off-label = Off: no ServiceDesk Plus address is set
sync-queue = Waiting to be sent
sync-lag = Oldest waiting change
sync-last-poll = Last successful poll
sync-import = Import from ServiceDesk Plus
import-first-pass = Listing: { $seen } requests seen, { $created } tickets created
import-details = Tickets listed ({ $created }); details read for { $fetched }
import-done = Finished: { $created } tickets imported
sync-sdp = ServiceDesk Plus
sdp-reachable = Answering
sdp-unreachable = Unreachable since { $since }: sync waits and tries again every few seconds
sdp-paused = Paused by an administrator: nothing is sent or read
sync-budget = Calls in the last minute
sync-budget-value = { $used } of { $limit }
sync-polls-stretched = Polls take { $secs } s instead of the configured interval: the budget left after customers' changes cannot keep up.
sync-pause = Pause sync
sync-resume = Resume sync
retry-all = Retry all
discard-all = Discard all
flash-sync-paused = Sync is paused: nothing is sent to or read from ServiceDesk Plus.
flash-sync-resumed = Sync is running again.
flash-dead-letters-retried = Every dead letter is back in the queue.
flash-dead-letters-discarded = Every dead letter is discarded.
tickets-total = Tickets
sync-errors = Delivery
sync-delivered = { $n ->
    [one] One change delivered
   *[other] { $n } changes delivered
}
sync-delivery-errors = { $n ->
    [one] One delivery error
   *[other] { $n } delivery errors
}
sync-poll-errors = { $n ->
    [one] One poll error
   *[other] { $n } poll errors
}
dead-letters = Dead letters
dead-letters-none = None: every change reached ServiceDesk Plus or is on its way.
queue-empty = Nothing waiting.
col-change = Change
col-error = Error
col-attempts = Attempts
col-actions = Actions
col-state = State
col-when = When
col-admin = Administrator
col-action = Action
col-detail = Detail
col-who = By
ticket-log = Ticket sync log
ticket-as-customer = View the ticket page
sdp-request = SDP request

deployment = Deployment
sdp-on-prem = On-premises
sdp-cloud = Cloud (Zoho)
base_url = Server address
api_key = API key (technician key, on-premises)
oauth_client_id = OAuth client ID (Cloud)
oauth_client_secret = OAuth client secret (Cloud)
oauth_refresh_token = OAuth refresh token (Cloud)
oauth_accounts_url = Zoho accounts address (Cloud)
poll_interval_secs = Poll interval (seconds)
webhook_secret = Webhook secret
secret-set = Set. Leave empty to keep it.
secret-unset = Not set.
fixed-by = Set by { $source }; change it there.
admin-whole-seconds = must be a whole number of seconds
admin-reenter-credential = the SDP address changed: enter the credential again (a saved one is never sent to a new address)
webhook-title = Webhook
webhook-hint = In ServiceDesk Plus, add a custom trigger that calls this address with the webhook secret in the X-Deskbridge-Secret header, so changes arrive at once.
test-hint = Checks the saved settings: signing in, reading the statuses list and reading a request.
test-button = Test connection
test-results = Connection test
check-configured = Settings
check-no-url = No server address is set.
check-auth = Signing in
check-auth-ok = ServiceDesk Plus accepted the credentials.
check-statuses = Statuses list
check-read = Reading a request
check-read-ok = Read request { $id }.
check-read-none = There is no request to read yet; the rest works.

statuses = Statuses
mapping-statuses-hint = How each ServiceDesk Plus status shows in the portal. Automatic uses the status's own timer flags.
mapping-sdp-status = ServiceDesk Plus status
mapping-portal-status = Portal status
mapping-automatic = Automatic
mapping-automatic-as = Automatic ({ $status })
mapping-names = Names used in ServiceDesk Plus
mapping-none = (none)
lists-unavailable = ServiceDesk Plus's lists could not be read ({ $reason }); type the names instead.
services = Services customers may choose
services-hint = ServiceDesk Plus's categories and subcategories. Tick those customers may choose in the new-ticket form; with none ticked the form keeps its free-text service.
services-off = ServiceDesk Plus is not configured: the new-ticket form keeps its free-text service.
services-fetched-at = Fetched from ServiceDesk Plus at
services-never-fetched = Not fetched from ServiceDesk Plus yet.
services-failed-at = The last fetch failed at
services-fetch = Fetch from ServiceDesk Plus
services-category-alone = The category alone
services-required = Customers must choose one
services-save = Save services
request_type_problem_report = Request type for problem reports
request_type_information_request = Request type for information requests
priority_low = Priority for Low
priority_medium = Priority for Medium
priority_high = Priority for High
priority_urgent = Priority for Urgent
category = Category for new requests
template = Request template for new requests
reopen_status = Status to reopen with

user-new = New account
user-create = Create account
issue-token = Issue API token
token-for = API token for { $email }
token-once = Copy it now: it is shown only once.
tokens-of = API tokens of { $email }
token-last-used = last used
token-never-used = never
token-expires = expires
token-revoke = Revoke
token-revoke-named = Revoke API token { $name }
new-password = New password
new-password-for = New password for { $email }
reset-password = Reset password

backup-title = Backup
backup-hint = A consistent copy of the store and every attachment, with a checksummed manifest. Restore it with `deskbridge restore --from FILE --data-dir DIR` into an empty directory.
backup-download = Download a backup

audit-empty = No admin actions yet.

flash-setup-done = Welcome. Now connect ServiceDesk Plus.
flash-sdp-saved = Saved and in force.
flash-mapping-saved = Mapping saved and in force.
flash-services-fetched = Categories fetched from ServiceDesk Plus.
flash-services-fetch-failed = The categories could not be fetched; the last ones fetched stay.
flash-services-saved = Services saved.
flash-sync-started = A poll has started.
flash-sweep-started = A reconciliation of every open ticket has started.
flash-sync-off = Sync is off: set the ServiceDesk Plus address first.
flash-dead-letter-retried = The change will be sent again.
flash-dead-letter-discarded = The change was discarded.
flash-user-created = Account created.
flash-user-disabled = Account disabled and signed out everywhere.
flash-user-enabled = Account enabled.
flash-password-reset = Password reset; the account's sessions were ended.
flash-token-issued = API token issued.
flash-token-revoked = API token revoked.
flash-branding-saved = Branding saved; the portal shows it now.
flash-branding-reset = Branding reset; the portal looks like deskbridge again.

branding-intro = How the customer portal and its sign-in page look. The console keeps its own look.
branding-name = Portal name
branding-name-hint = Shown in the header and the browser tab; at most 60 characters.
branding-colour = Primary colour
branding-colour-hint = Written #rrggbb, for example #0b5cad. It must be dark enough for white text on it and for links on the page (WCAG AA, 4.5:1). Empty keeps the default.
branding-logo = Logo
branding-logo-hint = PNG, JPEG or WebP, at most { $size }. Leave empty to keep the current logo.
branding-logo-current = The current logo
branding-logo-remove = Remove the logo
branding-footer = Footer text
branding-support = Support contact
branding-support-hint = An e-mail address (shown as a link), a phone number or a short note; at most 200 characters.
branding-reset = Reset to defaults
branding-reset-hint = Forget the name, logo, colour, footer and support contact.

error-admins-only = This page is for administrators
error-admins-only-detail = Sign in with an administrator account.
error-self-disable = You cannot disable your own account
error-self-disable-detail = Ask another administrator.
error-setup-done = An administrator already exists; sign in instead.
error-invalid-setup-token = The setup token is wrong; see the service log.
error-email-taken = This e-mail address already has an account.

admin-tickets = Tickets
filter-organization = Organisation
filter-requester = Requester
sync-state-pending = Waiting to sync
sync-state-synced = In sync
sync-state-failed = Failed
files-title = Files
files-none = No files.

## Organisations
admin-orgs = Organisations
orgs-intro = Customers belong to one organisation. Sharing decides what colleagues see: off (each sees only their own tickets), the tickets they are on (requested or copied), or every ticket of the organisation.
orgs-none = No organisations yet. They are also created when an account is given a new organisation name.
field-org-name = Name
field-domains = E-mail domains
field-domains-hint = Separated by commas, e.g. acme.example. New customers with these addresses join the organisation.
field-sharing = Sharing
field-organization = Organisation
sharing-off = Off: each customer sees their own tickets
sharing-participants = Colleagues see the tickets they are on
sharing-organization = Colleagues see every ticket of the organisation
col-members = Members
org-new = New organisation
org-create = Create organisation
org-of = Organisation of { $email }
org-move = Move
flash-org-saved = Organisation saved.
flash-user-moved = Organisation changed.
error-organization-name-taken = An organisation with this name already exists.
error-domain-taken = This domain already belongs to another organisation.
