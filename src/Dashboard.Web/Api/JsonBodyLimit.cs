namespace Dashboard.Web.Api;

/// <summary>
/// The most a JSON request body of a form-sized endpoint may hold (a change, a what-if of up to 20 rules): Kestrel's
/// default of 30 MB would let a body of empty objects become a gigabyte of them before any check runs. Beyond it: 413.
/// </summary>
public static class JsonBodyLimit
{
    public const long Bytes = 64 * 1024;
}
