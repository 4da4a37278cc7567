<?php
namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

/** No sessions or cookies: the walk needs routing, views and storage. */
class Kernel extends HttpKernel
{
    protected $middleware = [];
    protected $middlewareGroups = ['web' => []];
    protected $routeMiddleware = [];
}
